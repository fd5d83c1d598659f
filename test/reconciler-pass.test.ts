import { beforeAll, describe, expect, it, vi } from 'vitest'
import { type Environment, FINALIZER, OWNER_LABELS } from '../api/environment.ts'
import { environment, installCrd, passes, publishApp } from './support/environments.ts'
import { configMap } from './support/config-repo.ts'
import { useGround } from './support/ground.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'
const registry = (): string => g.ground.registries.plain.host

type Cm = { metadata: { labels?: Record<string, string> }; data?: Record<string, string> }

describe('one reconcile pass against the real apiserver and registry', () => {
  let repository = ''
  const digests: Record<string, string> = {}
  const { envRef, pass, ready } = passes(g)
  const cm = (name: string): Promise<Cm | undefined> =>
    g.kube().get<Cm>({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: g.namespace } })
  const getEnv = async (name: string): Promise<Environment> => {
    const env = await g.kube().get<Environment>(envRef(name))
    if (!env) throw new Error(`${name} missing`)
    return env
  }
  const setSpec = async (name: string, spec: Record<string, unknown>): Promise<void> => {
    await g.kube().mergePatch(envRef(name), { spec })
  }

  beforeAll(async () => {
    await installCrd(g.kube())
    repository = `${registry()}/${g.repository}/app`
    const dir = g.scratch()
    digests['1.0.0'] = await publishApp(dir, repository, '1.0.0', {
      a: configMap('alpha', { v: '1' }),
      b: configMap('beta', { v: '1' }),
    })
    digests['1.1.0'] = await publishApp(dir, repository, '1.1.0', { a: configMap('alpha', { v: '2' }) })
    digests['1.2.0-rc.1'] = await publishApp(dir, repository, '1.2.0-rc.1', { a: configMap('alpha', { v: 'rc' }) })
  })

  it('applies a pinned version, labels what it owns and reports Ready with inventory and history', async () => {
    await g.kube().apply(
      environment(g.namespace, 'first', {
        source: { repository: `oci://${repository}`, plainHTTP: true },
        version: '1.0.0',
      }),
    )
    const env = await pass('first')
    expect(ready(env)).toMatchObject({ status: 'True', reason: 'Succeeded', message: 'applied 1.0.0' })
    expect(env.status).toMatchObject({
      lastAppliedVersion: '1.0.0',
      lastAppliedDigest: digests['1.0.0'],
      observedGeneration: 1,
    })
    expect(env.status?.inventory?.map((e) => e.name).sort()).toEqual(['alpha', 'beta'])
    expect(env.status?.history).toEqual([
      expect.objectContaining({ version: '1.0.0', digest: digests['1.0.0'], result: 'Succeeded' }),
    ])
    expect(env.metadata.finalizers).toContain(FINALIZER)
    expect((await cm('alpha'))?.metadata.labels).toMatchObject({
      [OWNER_LABELS.name]: 'first',
      [OWNER_LABELS.namespace]: g.namespace,
    })

    const table = await g.kubectl(['get', 'environments', '-n', g.namespace, 'first'])
    expect(table).toMatch(
      /NAME\s+VERSION\s+DIGEST\s+READY\s+STATUS\s+AGE\nfirst\s+1\.0\.0\s+[a-f0-9]{12}\s+True\s+applied 1\.0\.0/,
    )
    expect(
      await g.kubectl(['wait', '--for=condition=Ready', `environment/first`, '-n', g.namespace, '--timeout=5s']),
    ).toContain('condition met')
  })

  it('moves 1.0.0 → 1.1.0, pruning what left the artifact, and never prunes what it does not own', async () => {
    await g.kube().apply(
      configMap('bystander', { mine: 'no' }, g.namespace) as {
        apiVersion: string
        kind: string
        metadata: { name: string }
      },
    )
    await setSpec('first', { version: '1.1.0' })
    const env = await pass('first')
    expect(ready(env)).toMatchObject({ status: 'True', message: 'applied 1.1.0' })
    expect((await cm('alpha'))?.data).toEqual({ v: '2' })
    expect(await cm('beta')).toBeUndefined()
    expect(await cm('bystander')).toBeDefined()
    expect(env.status?.inventory?.map((e) => e.name)).toEqual(['alpha'])
    expect(env.status?.history?.map((h) => h.version)).toEqual(['1.0.0', '1.1.0'])
  })

  it('a version that does not exist fails with a reason, and the version before keeps running', async () => {
    await setSpec('first', { version: '9.9.9' })
    const env = await pass('first')
    expect(ready(env)).toMatchObject({
      status: 'False',
      reason: 'VersionNotFound',
      message: expect.stringContaining('still running 1.1.0'),
    })
    expect(env.status?.lastAppliedVersion).toBe('1.1.0')
    expect((await cm('alpha'))?.data).toEqual({ v: '2' })
  })

  it('a moved tag (digest pin that does not match) is refused', async () => {
    await setSpec('first', { version: '1.0.0', digest: digests['1.1.0'] })
    const env = await pass('first')
    expect(ready(env)).toMatchObject({
      status: 'False',
      reason: 'DigestMismatch',
      message: expect.stringContaining('the tag moved'),
    })
    expect((await cm('alpha'))?.data).toEqual({ v: '2' })
    await setSpec('first', { digest: null })
  })

  it('a range picks the highest release, and a prerelease only when the range asks for one', async () => {
    // Its own target namespace: two Environments must not own the same objects.
    const target = `${g.namespace}-ranged`
    await g.kube().apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: target } })
    await g.kube().apply(
      environment(g.namespace, 'ranged', {
        source: { repository: `oci://${repository}`, plainHTTP: true },
        version: '~1',
        targetNamespace: target,
      }),
    )
    expect((await pass('ranged')).status?.lastAppliedVersion).toBe('1.1.0')
    await setSpec('ranged', { version: '>=1.2.0-rc.0' })
    expect((await pass('ranged')).status?.lastAppliedVersion).toBe('1.2.0-rc.1')
  })

  it('the CRD schema refuses a malformed field at the apiserver', async () => {
    await expect(
      g.kube().apply(
        environment(g.namespace, 'refused', {
          source: { repository: `oci://${repository}`, plainHTTP: true },
          version: '1.0.0',
          interval: 'soon',
        }),
      ),
    ).rejects.toMatchObject({ code: 422, message: expect.stringContaining('spec.interval') })
  })

  it('a spec the schema cannot judge but the reconciler can stalls, naming the field', async () => {
    await g.kube().apply(
      environment(g.namespace, 'broken', {
        source: { repository: `oci://${repository}`, plainHTTP: true },
        version: 'banana',
      }),
    )
    const env = await pass('broken')
    expect(env.status?.conditions?.find((c) => c.type === 'Stalled')).toMatchObject({
      status: 'True',
      reason: 'InvalidSpec',
      message: expect.stringContaining('spec.version: must be a version (1.2.3) or a semver range'),
    })
    expect(ready(env)).toMatchObject({ status: 'False', reason: 'InvalidSpec' })
  })

  it('suspend changes nothing until resumed', async () => {
    await setSpec('first', { version: '1.0.0', suspend: true })
    const env = await pass('first')
    expect(env.status?.conditions?.find((c) => c.type === 'Suspended')).toMatchObject({
      status: 'True',
      reason: 'Suspended',
    })
    expect((await cm('alpha'))?.data).toEqual({ v: '2' })
    await setSpec('first', { suspend: false })
    expect((await pass('first')).status?.lastAppliedVersion).toBe('1.0.0')
    expect((await cm('alpha'))?.data).toEqual({ v: '1' })
  })

  it('writes nothing on a periodic pass while nothing drifted, and corrects drift on the next pass', async () => {
    // Count the real client's writes: applies that are not dry runs.
    const apply = vi.spyOn(g.kube(), 'apply')
    const statusWrites = vi.spyOn(g.kube(), 'patchStatus')
    const writes = (): number => apply.mock.calls.filter(([, options]) => options?.dryRun !== true).length
    try {
      await pass('first')
      statusWrites.mockClear()
      const quiet = await pass('first')
      expect(ready(quiet)).toMatchObject({ status: 'True', message: 'applied 1.0.0' })
      expect(writes()).toBe(0)
      // Not even its status: the same verdict, the same history row, nothing to write.
      expect(statusWrites).not.toHaveBeenCalled()
      expect(apply.mock.calls.length).toBeGreaterThan(0)

      await g.kubectl([
        'patch',
        'configmap',
        'alpha',
        '-n',
        g.namespace,
        '--type=merge',
        '-p',
        '{"data":{"v":"edited by hand"}}',
      ])
      await pass('first')
      expect(writes()).toBeGreaterThan(0)
      expect((await cm('alpha'))?.data).toEqual({ v: '1' })
    } finally {
      apply.mockRestore()
      statusWrites.mockRestore()
    }
  })

  it('with driftPolicy warn, reports drift with the object and field, changes nothing, and records events', async () => {
    await setSpec('first', { driftPolicy: 'warn' })
    await pass('first')
    await g.kubectl([
      'patch',
      'configmap',
      'alpha',
      '-n',
      g.namespace,
      '--type=merge',
      '-p',
      '{"data":{"v":"edited again"}}',
    ])
    const env = await pass('first')
    expect(env.status?.conditions?.find((c) => c.type === 'Drifted')).toMatchObject({
      status: 'True',
      message: expect.stringContaining(`ConfigMap ${g.namespace}/alpha (data.v)`),
    })
    expect((await cm('alpha'))?.data).toEqual({ v: 'edited again' })

    const events = JSON.parse(
      await g.kubectl([
        'get',
        'events',
        '-n',
        g.namespace,
        '--field-selector',
        'involvedObject.name=first',
        '-o',
        'json',
      ]),
    ) as { items: Array<{ reason: string; message: string }> }
    const reasons = events.items.map((e) => e.reason)
    expect(reasons).toEqual(
      expect.arrayContaining(['Applied', 'Pruned', 'VersionNotFound', 'DriftCorrected', 'DriftDetected']),
    )
    expect(events.items.find((e) => e.reason === 'Pruned')?.message).toContain('ConfigMap')

    await setSpec('first', { driftPolicy: 'correct' })
    await pass('first')
    expect((await cm('alpha'))?.data).toEqual({ v: '1' })
    expect((await getEnv('first')).status?.conditions?.find((c) => c.type === 'Drifted')).toBeUndefined()
  })

  it('deleting the Environment removes what it applied, then the Environment itself', async () => {
    await g.kube().delete(envRef('first'))
    await pass('first').catch(() => undefined)
    expect(await cm('alpha')).toBeUndefined()
    expect(await cm('bystander')).toBeDefined()
    expect(await g.kube().get(envRef('first'))).toBeUndefined()
  })
})
