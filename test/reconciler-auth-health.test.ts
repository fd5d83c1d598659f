import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { publish } from '../packager/publish.ts'
import { berthYaml, configMap, unschedulable, writeTree } from './support/config-repo.ts'
import { environment, installCrd, passes, publishApp, testClock } from './support/environments.ts'
import { useGround } from './support/ground.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'

describe('registry credentials from a Secret, deletion policy, and the health timeout', () => {
  // Health timeouts pass on this clock: the test moves it forward instead of sleeping past them.
  const clock = testClock()
  const { envRef, pass, run, ready } = passes(g, g.kube, clock.now)

  beforeAll(async () => {
    await installCrd(g.kube())
  })

  it('pulls from the TLS registry with basic auth through a dockerconfigjson Secret, and says Unauthorized without it', async () => {
    // oras, which the pass runs, trusts the ground's CA through SSL_CERT_FILE, as a pod would through its CA bundle.
    process.env.SSL_CERT_FILE = g.ground.ca.cert
    const secure = g.ground.registries.secure
    const repository = `${secure.host}/${g.repository}/private`
    const src = await writeTree(join(g.scratch(), 'private-src'), {
      'berth.yaml': berthYaml(`oci://${repository}`, { app: { manifests: 'app' } }),
      'app/cm.yaml': configMap('private', { v: '1' }),
    })
    await publish({
      input: src,
      version: '1.0.0',
      access: { caFile: g.ground.ca.cert },
      credentials: { username: secure.username ?? '', password: secure.password ?? '' },
    })

    await g
      .kube()
      .apply(environment(g.namespace, 'private', { source: { repository: `oci://${repository}` }, version: '1.0.0' }))
    expect(ready(await pass('private'))).toMatchObject({ status: 'False', reason: 'RegistryUnauthorized' })

    const auth = Buffer.from(`${secure.username ?? ''}:${secure.password ?? ''}`).toString('base64')
    await g.kube().apply({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'registry', namespace: g.namespace },
      type: 'kubernetes.io/dockerconfigjson',
      data: {
        '.dockerconfigjson': Buffer.from(JSON.stringify({ auths: { [secure.host]: { auth } } })).toString('base64'),
      },
    })
    await g.kube().mergePatch(envRef('private'), { spec: { source: { secretRef: { name: 'registry' } } } })
    const env = await pass('private')
    expect(ready(env)).toMatchObject({ status: 'True' })
    expect(JSON.stringify(env.status)).not.toContain(secure.password ?? 'never')
  })

  it('a missing or wrong Secret stalls with a message naming it', async () => {
    const repository = `${g.ground.registries.plain.host}/${g.repository}/x`
    await g.kube().apply(
      environment(g.namespace, 'nosecret', {
        source: { repository: `oci://${repository}`, plainHTTP: true, secretRef: { name: 'absent' } },
        version: '1.0.0',
      }),
    )
    const env = await pass('nosecret')
    expect(env.status?.conditions?.find((c) => c.type === 'Stalled')).toMatchObject({
      status: 'True',
      reason: 'InvalidSecret',
      message: expect.stringContaining(`Secret ${g.namespace}/absent must exist`),
    })
  })

  it('deletionPolicy orphan leaves what was applied when the Environment is deleted', async () => {
    const repository = `${g.ground.registries.plain.host}/${g.repository}/orphan`
    await publishApp(g.scratch(), repository, '1.0.0', { cm: configMap('orphaned', { v: '1' }) })
    await g.kube().apply(
      environment(g.namespace, 'orphan', {
        source: { repository: `oci://${repository}`, plainHTTP: true },
        version: '1.0.0',
        deletionPolicy: 'orphan',
      }),
    )
    expect(ready(await pass('orphan'))).toMatchObject({ status: 'True' })
    await g.kube().delete(envRef('orphan'))
    await expect(pass('orphan')).rejects.toThrow('Environment orphan is gone')
    expect(
      await g
        .kube()
        .get({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'orphaned', namespace: g.namespace } }),
    ).toBeDefined()
  })

  it('rollback onFailure: a version that fails health is rolled back to the last healthy digest, the failed pin stays visible, no retry loop', async () => {
    const repository = `${g.ground.registries.plain.host}/${g.repository}/autoroll`
    const broken = unschedulable('never')
    const good = await publishApp(g.scratch(), repository, '1.0.0', { cm: configMap('auto', { v: '1' }) })
    await publishApp(g.scratch(), repository, '2.0.0', { cm: configMap('auto', { v: '2' }), web: broken })
    await publishApp(g.scratch(), repository, '3.0.0', { cm: configMap('auto', { v: '3' }) })
    const cm = async (): Promise<string | undefined> =>
      (
        await g.kube().get<{ data: Record<string, string> }>({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'auto', namespace: g.namespace },
        })
      )?.data.v
    await g.kube().apply(
      environment(g.namespace, 'auto', {
        source: { repository: `oci://${repository}`, plainHTTP: true },
        version: '1.0.0',
        timeout: '1s',
        rollback: 'onFailure',
      }),
    )
    expect(ready(await pass('auto'))).toMatchObject({ status: 'True' })

    await g.kube().mergePatch(envRef('auto'), { spec: { version: '2.0.0' } })
    expect(ready(await pass('auto'))).toMatchObject({ reason: 'Progressing' })
    expect(await cm()).toBe('2')
    clock.later(1_200)
    // One pass sees the failure and rolls back: no second pass, no 1 ms requeue in between.
    const { env: rolled, outcome } = await run('auto')
    expect(outcome).toEqual({ next: 'requeue', afterMs: 300_000 })
    expect(rolled.status?.history?.slice(-2)).toEqual([
      expect.objectContaining({ version: '2.0.0', result: 'HealthCheckFailed' }),
      expect.objectContaining({ version: '1.0.0', digest: good, result: 'Succeeded' }),
    ])
    expect(ready(rolled)).toMatchObject({
      status: 'False',
      reason: 'RolledBack',
      message: expect.stringContaining('2.0.0 failed its health check and was rolled back; running 1.0.0'),
    })
    expect(rolled.spec).toMatchObject({ version: '2.0.0' })
    expect(rolled.status).toMatchObject({
      lastAppliedVersion: '1.0.0',
      lastAppliedDigest: good,
      lastAttemptedVersion: '2.0.0',
    })
    expect(await cm()).toBe('1')
    expect(
      await g
        .kube()
        .get({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'never', namespace: g.namespace } }),
    ).toBeUndefined()

    // Another pass on the same pin stays on the healthy version.
    expect((await pass('auto')).status?.lastAppliedVersion).toBe('1.0.0')
    expect(await cm()).toBe('1')

    await g.kube().mergePatch(envRef('auto'), { spec: { version: '3.0.0' } })
    expect(ready(await pass('auto'))).toMatchObject({ status: 'True', message: 'applied 3.0.0' })
    expect(await cm()).toBe('3')
  })

  it('past spec.timeout an object that never becomes healthy makes Ready False, naming it', async () => {
    const repository = `${g.ground.registries.plain.host}/${g.repository}/slow`
    await publishApp(g.scratch(), repository, '1.0.0', {
      web: unschedulable('slow'),
    })
    await g.kube().apply(
      environment(g.namespace, 'slow', {
        source: { repository: `oci://${repository}`, plainHTTP: true },
        version: '1.0.0',
        timeout: '1s',
      }),
    )
    expect(ready(await pass('slow'))).toMatchObject({ status: 'False', reason: 'Progressing' })
    clock.later(1_200)
    const env = await pass('slow')
    expect(ready(env)).toMatchObject({
      status: 'False',
      reason: 'HealthCheckFailed',
      message: expect.stringContaining(`Deployment ${g.namespace}/slow`),
    })
    expect(env.status?.history?.at(-1)).toMatchObject({ version: '1.0.0', result: 'HealthCheckFailed' })
  })
})
