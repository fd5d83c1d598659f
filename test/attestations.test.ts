/**
 * Promotion across clusters on signed evidence, on two real grounds sharing one registry: staging on ground A attests
 * what ran healthy there (spec.attest); prod on ground B, which holds no credentials for A, applies only what carries
 * such an attestation from staging's identity, signed by a trusted key, soaked long enough (promotion.attested).
 * The real cosign verifies berth's attestations, and berth accepts one the real `cosign attest` made.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Environment, environmentRef } from '../api/environment.ts'
import { reconcileEnvironment } from '../reconciler/pass/reconcile.ts'
import { attestationTag, attestHealth, HEALTH_PREDICATE, type HealthPredicate } from '../shared/attestations.ts'
import { generateKeyPair, readPrivateKey } from '../shared/cosign.ts'
import { appendLayer, attachedLayers, readBlob } from '../shared/cosign-tags.ts'
import { DSSE_ENVELOPE } from '../shared/dsse.ts'
import { Kube, loadKubeConfig } from '../shared/kube.ts'
import { type GroundInfo, startGround, stopGround, writeContexts } from './ground/ground.ts'
import { configMap, deployment, statusCrd } from './support/config-repo.ts'
import { environment, eventsOf, installCrd, publishApp, testClock } from './support/environments.ts'
import { eventually } from './support/eventually.ts'
import { ROOT, useGround } from './support/ground.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'

const PASSWORD = 'correct horse'
const keys = generateKeyPair(PASSWORD)
const stranger = generateKeyPair(PASSWORD)
const CLUSTER = 'eu-1'

describe('promotion across clusters on health attestations', () => {
  let b: GroundInfo | undefined
  let kubeB: Kube | undefined
  const prodNs = 'prod'
  const clockA = testClock()
  const clockB = testClock()
  const repository = (): string => `${g.ground.registries.plain.host}/${g.repository}/app`
  const identity = (): string => `${CLUSTER}/${g.namespace}/staging`
  const B = (): Kube => {
    if (!kubeB) throw new Error('ground B is started in beforeAll')
    return kubeB
  }

  beforeAll(async () => {
    b = await startGround({ say: () => undefined })
    kubeB = new Kube(loadKubeConfig({ kubeconfig: b.kubeconfig }))
    await installCrd(g.kube())
    await installCrd(B())
    await B().apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: prodNs } })
    type Data = Record<string, string>
    const secret = async (kube: Kube, namespace: string, name: string, stringData: Data): Promise<void> => {
      await kube.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type: 'Opaque', stringData })
    }
    // A: the key staging signs with, and push credentials (none needed on the ground's plain registry).
    await secret(g.kube(), g.namespace, 'attest', {
      'cosign.key': keys.privateKey,
      'cosign.password': PASSWORD,
      '.dockerconfigjson': '{"auths":{}}',
    })
    // B: only the public key. Nothing of A.
    await secret(B(), prodNs, 'trusted', { 'cosign.pub': keys.publicKey })
    await secret(B(), prodNs, 'strangers', { 'cosign.pub': stranger.publicKey })
  }, 180_000)
  afterAll(async () => {
    if (b) await stopGround(b)
  })

  const source = (): Record<string, unknown> => ({ repository: `oci://${repository()}`, plainHTTP: true })
  const stagingSpec = (version: string): Record<string, unknown> => ({
    source: source(),
    version,
    attest: { secretRef: { name: 'attest' } },
    rollback: 'onFailure',
    timeout: '1m',
  })
  const prodSpec = (version: string, trusted = 'trusted', soak = '30m'): Record<string, unknown> => ({
    source: source(),
    version,
    promotion: { attested: { environment: identity(), secretRef: { name: trusted } }, soak },
  })
  const passA = async (): Promise<Environment> => {
    await reconcileEnvironment(
      { kube: g.kube(), cacheDir: join(g.scratch(), 'cache-a'), now: clockA.now, clusterName: CLUSTER },
      { namespace: g.namespace, name: 'staging' },
    )
    return (await g.kube().get<Environment>(environmentRef(g.namespace, 'staging'))) as Environment
  }
  const passB = async (): Promise<Environment> => {
    await reconcileEnvironment(
      { kube: B(), cacheDir: join(g.scratch(), 'cache-b'), now: clockB.now, clusterName: 'eu-2' },
      { namespace: prodNs, name: 'prod' },
    )
    return (await B().get<Environment>(environmentRef(prodNs, 'prod'))) as Environment
  }
  const ready = (e: Environment): { status?: string; reason?: string; message?: string } =>
    e.status?.conditions?.find((c) => c.type === 'Ready') ?? {}
  const digestOf = (e: Environment): string => e.status?.lastAttemptedDigest ?? ''

  it('a version healthy on staging is attested, and reaches prod in the other cluster once soaked', async () => {
    await publishApp(g.scratch(), repository(), '1.0.0', { cm: configMap('app-config', { v: '1' }) })
    await g.kube().apply(environment(g.namespace, 'staging', stagingSpec('1.0.0')))
    const staging = await passA()
    expect(ready(staging).status).toBe('True')
    const digest = staging.status?.lastAppliedDigest ?? ''
    expect(staging.status?.attested).toEqual([
      expect.objectContaining({ version: '1.0.0', digest, result: 'healthy', reference: attestationTag(repository(), digest) }),
    ])
    expect((await eventsOf(g, 'staging', 'Attested')).at(-1)?.message).toContain(`attested 1.0.0 (${digest}) healthy`)

    // The real cosign verifies it, offline.
    const verified = await cosign(g, ['verify-attestation', '--key', await keyFile(g, 'cosign.pub', keys.publicKey),
      '--type', HEALTH_PREDICATE, `${repository()}@${digest}`])
    const statement = JSON.parse(
      Buffer.from((JSON.parse(verified.split('\n')[0] ?? '{}') as { payload: string }).payload, 'base64').toString(),
    ) as { predicate: HealthPredicate }
    expect(statement.predicate).toMatchObject({ cluster: CLUSTER, namespace: g.namespace, environment: 'staging', result: 'healthy' })

    await B().apply(environment(prodNs, 'prod', prodSpec('1.0.0')))
    const held = await passB()
    expect(ready(held)).toMatchObject({ reason: 'PromotionBlocked' })
    expect(ready(held).message).toMatch(new RegExp(`healthy on ${identity()} for \\d+s of 30m`))
    clockB.later(31 * 60_000)
    const through = await passB()
    expect(ready(through).status).toBe('True')
    expect(through.status?.lastAppliedVersion).toBe('1.0.0')
    expect(await B().get(configMap('app-config', {}, prodNs) as never)).toBeDefined()
  }, 120_000)

  it('a version whose rollout fails for real on staging is rolled back there, never attested healthy, and refused in prod', async () => {
    const stuck = deployment('web', {
      replicas: 1,
      progressDeadlineSeconds: 1,
      template: {
        metadata: { labels: { app: 'web' } },
        spec: { containers: [{ name: 'a', image: 'example.com/a:1', resources: { requests: { cpu: '64' } } }] },
      },
    })
    await publishApp(g.scratch(), repository(), '2.0.0', { cm: configMap('app-config', { v: '2' }), web: stuck })
    await g.kube().apply(environment(g.namespace, 'staging', stagingSpec('2.0.0')))
    // The deployment controller gives up after a second (ProgressDeadlineExceeded): berth rolls staging back.
    const rolledBack = await eventually(passA, (e) => ready(e).reason === 'RolledBack', 60_000, 500)
    const failed = digestOf(rolledBack)
    expect((await eventsOf(g, 'staging', 'RollingBack')).at(-1)?.message).toContain('ProgressDeadlineExceeded')
    expect(rolledBack.status?.attested?.some((a) => a.digest === failed)).toBe(false)

    await B().apply(environment(prodNs, 'prod', prodSpec('2.0.0')))
    const refused = await passB()
    expect(ready(refused)).toMatchObject({ reason: 'PromotionBlocked' })
    expect(ready(refused).message).toContain(`no attestation of ${failed} from ${identity()}`)
    expect(refused.status?.lastAppliedVersion).toBe('1.0.0')
  }, 120_000)

  it('a digest attested healthy that later fails on staging gets a failed attestation, which blocks prod', async () => {
    const group = `${g.namespace}.attest.example.com`
    await g.kube().apply(statusCrd(group, 'Probe'))
    await eventually(() => g.kubectl(['get', 'crd', `probes.${group}`, '-o', 'jsonpath={.status.conditions[?(@.type=="Established")].status}']), (s) => s === 'True', 30_000)
    const probe = { apiVersion: `${group}/v1`, kind: 'Probe', metadata: { name: 'probe' }, spec: { n: 1 } }
    await publishApp(g.scratch(), repository(), '3.0.0', { cm: configMap('app-config', { v: '3' }), probe })
    await g.kube().apply(environment(g.namespace, 'staging', stagingSpec('3.0.0')))
    const healthy = await eventually(passA, (e) => e.status?.lastAppliedVersion === '3.0.0' && ready(e).status === 'True', 60_000, 500)
    const digest = healthy.status?.lastAppliedDigest ?? ''
    expect(healthy.status?.attested?.at(-1)).toMatchObject({ digest, result: 'healthy' })

    // Then it fails there: its object reports Stalled.
    await g.kubectl(['patch', `probes.${group}`, 'probe', '-n', g.namespace, '--subresource=status', '--type=merge', '-p',
      '{"status":{"conditions":[{"type":"Stalled","status":"True","reason":"Broken","message":"broken on purpose"}]}}'])
    const after = await passA()
    expect(after.status?.attested?.at(-1)).toMatchObject({ digest, result: 'failed' })

    await B().apply(environment(prodNs, 'prod', prodSpec('3.0.0', 'trusted', '0s')))
    const refused = await passB()
    expect(ready(refused).message).toContain(`3.0.0 failed upstream on ${identity()}`)
  }, 120_000)

  it('berth attestations lists who attested what; promote --from <identity> pins the highest version attested healthy; status spans clusters', async () => {
    const bin = join(ROOT, 'bin/berth.js')
    type Run = { stdout: string; stderr: string; exitCode?: number }
    const berth = (args: string[], kubeconfig?: string): Promise<Run> =>
      execa(process.execPath, [bin, ...args, ...(kubeconfig ? ['--kubeconfig', kubeconfig] : [])], { reject: false })
    const pub = await keyFile(g, 'cosign.pub', keys.publicKey)
    const listed = await berth(['attestations', `oci://${repository()}`, '3.0.0', '--plain-http', '--key', pub, '-o', 'json'])
    const json = JSON.parse(listed.stdout) as { listed: Array<{ identity: string; result: string; key: string }> }
    expect(json.listed.map((a) => [a.identity, a.result, a.key])).toEqual([
      [identity(), 'healthy', pub],
      [identity(), 'failed', pub],
    ])
    const unverified = await berth(['attestations', `oci://${repository()}`, '3.0.0', '--plain-http'])
    expect(unverified.stdout).toMatch(new RegExp(`${identity()}\\s+3\\.0\\.0\\s+healthy.*unverified`))

    // Healthy by staging's word: 1.0.0; 2.0.0 never attested; 3.0.0's newest word is failed.
    const promoted = await berth(['promote', 'prod', '-n', prodNs, '--from', identity(), '-o', 'json'], b?.kubeconfig)
    expect(promoted.stderr).toBe('')
    expect(JSON.parse(promoted.stdout)).toMatchObject({ from: '3.0.0', to: '1.0.0' })
    // The promotion pinned the digest too; the tests after it pin versions only.
    const unpin = ['--kubeconfig', b?.kubeconfig ?? '', 'patch', 'environment', 'prod', '-n', prodNs, '--type=merge']
    await execa(g.ground.parts.kubectl, [...unpin, '-p', '{"spec":{"digest":null}}'])

    // One table across both clusters: a kubeconfig with a context for each.
    const combined = join(g.scratch(), 'two-clusters.kubeconfig')
    await writeContexts(combined, { 'eu-1': g.ground.kubeconfig, 'eu-2': b?.kubeconfig ?? '' })
    const across = await berth(['status', '--all-contexts', '-A', '-o', 'json'], combined)
    const rows = JSON.parse(across.stdout) as Array<{ cluster: string; namespace: string; name: string }>
    expect(rows.filter((r) => r.name === 'staging' || r.name === 'prod').map((r) => [r.cluster, r.namespace, r.name])).toEqual([
      ['eu-1', g.namespace, 'staging'],
      ['eu-2', prodNs, 'prod'],
    ])
    const two = await berth(['status', '--context', 'eu-1', '--context', 'eu-2', '-n', prodNs], combined)
    expect(two.stdout).toMatch(/^CLUSTER\s+NAMESPACE\s+NAME/)
    expect(two.stdout).toMatch(/\neu-2\s+prod\s+prod\s+1\.0\.0/)
  }, 120_000)

  it('refuses attestations signed by another key, naming another environment, copied from another digest, or altered', async () => {
    const key = await readPrivateKey(keys.privateKey, PASSWORD)
    const access = { plainHttp: true }
    const publish = async (version: string): Promise<string> =>
      await publishApp(g.scratch(), repository(), version, { cm: configMap('app-config', { v: version }) })
    const predicate = (version: string, digest: string, over: Partial<HealthPredicate> = {}): HealthPredicate => ({
      cluster: CLUSTER, namespace: g.namespace, environment: 'staging', version, digest, result: 'healthy',
      readySince: '2026-01-01T00:00:00Z', attestedAt: new Date().toISOString(), berthVersion: '0.1.0', ...over,
    })
    const blockedOn = async (version: string, trusted = 'trusted'): Promise<string> => {
      await B().apply(environment(prodNs, 'prod', prodSpec(version, trusted, '0s')))
      const env = await passB()
      expect(ready(env).reason).toBe('PromotionBlocked')
      return ready(env).message ?? ''
    }
    // Signed by a key prod does not trust (the real staging key, but prod trusts only a stranger's).
    expect(await blockedOn('1.0.0', 'strangers')).toMatch(/bad or untrusted signature/)

    const other = await publish('4.0.0')
    await attestHealth(repository(), other, predicate('4.0.0', other, { environment: 'canary' }), key, access)
    expect(await blockedOn('4.0.0')).toContain(`attested by ${CLUSTER}/${g.namespace}/canary, not by ${identity()}`)

    // 1.0.0's genuine attestation, copied under 5.0.0.
    const copied = await publish('5.0.0')
    const staging = await g.kube().get<Environment>(environmentRef(g.namespace, 'staging'))
    const one = staging?.status?.attested?.find((a) => a.version === '1.0.0')?.digest ?? ''
    const [genuine] = await attachedLayers(attestationTag(repository(), one), DSSE_ENVELOPE, access)
    const envelope = await readBlob(`${repository()}@${genuine?.digest ?? ''}`, access)
    await appendLayer(repository(), attestationTag(repository(), copied), [], envelope,
      { mediaType: DSSE_ENVELOPE, annotations: { predicateType: HEALTH_PREDICATE } }, access)
    expect(await blockedOn('5.0.0')).toContain('made for another digest')

    // A genuine attestation of 6.0.0 whose payload was altered in the registry (failed → healthy).
    const altered = await publish('6.0.0')
    await attestHealth(repository(), altered, predicate('6.0.0', altered, { result: 'failed' }), key, access)
    const [layer] = await attachedLayers(attestationTag(repository(), altered), DSSE_ENVELOPE, access)
    const sealed = JSON.parse((await readBlob(`${repository()}@${layer?.digest ?? ''}`, access)).toString()) as { payload: string }
    const statement = JSON.parse(Buffer.from(sealed.payload, 'base64').toString()) as { predicate: HealthPredicate }
    statement.predicate.result = 'healthy'
    sealed.payload = Buffer.from(JSON.stringify(statement)).toString('base64')
    await appendLayer(repository(), attestationTag(repository(), altered), [], Buffer.from(JSON.stringify(sealed)),
      { mediaType: DSSE_ENVELOPE, annotations: { predicateType: HEALTH_PREDICATE } }, access)
    expect(await blockedOn('6.0.0')).toMatch(/bad or untrusted signature/)
  }, 120_000)

  it('the apiserver refuses a promotion that names two upstreams, or a soak without one', async () => {
    const cases: Array<[object, string]> = [
      [{ soak: '1m' }, 'soak needs an upstream (from or attested)'],
      [
        { from: 'staging', attested: { environment: identity(), secretRef: { name: 'trusted' } } },
        'must name at most one upstream: from (this cluster) or attested (anywhere)',
      ],
    ]
    for (const [promotion, message] of cases) {
      const refused = await B().apply(environment(prodNs, 'ambiguous', { source: source(), version: '1.0.0', promotion }))
        .then(() => '', (error: unknown) => String(error))
      expect(refused).toContain(message)
    }
  })

  it('a push that fails is AttestationFailed, retried soon, and never holds the Environment; no secret is said', async () => {
    await g.kube().apply({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'attest-wrong', namespace: g.namespace },
      type: 'Opaque',
      stringData: { 'cosign.key': keys.privateKey, 'cosign.password': 'not the password', '.dockerconfigjson': '{"auths":{}}' },
    })
    // Its objects in a namespace of their own: staging owns app-config in this one.
    const target = `${g.namespace}-canary`
    await g.kube().apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: target } })
    await g.kube().apply(environment(g.namespace, 'canary', {
      source: source(),
      version: '1.0.0',
      targetNamespace: target,
      attest: { secretRef: { name: 'attest-wrong' } },
    }))
    const outcome = await reconcileEnvironment(
      { kube: g.kube(), cacheDir: join(g.scratch(), 'cache-a'), now: clockA.now, clusterName: CLUSTER },
      { namespace: g.namespace, name: 'canary' },
    )
    const canary = await g.kube().get<Environment>(environmentRef(g.namespace, 'canary'))
    expect(canary && ready(canary).status).toBe('True')
    expect(canary?.status?.attested).toBeUndefined()
    expect(outcome).toEqual({ next: 'requeue', afterMs: 5_000 })
    const [failed] = await eventsOf(g, 'canary', 'AttestationFailed')
    expect(failed?.message).toMatch(/could not attest 1\.0\.0 .* wrong password.*trying again in 5 s/)
    expect(JSON.stringify([canary, await eventsOf(g, 'canary')])).not.toContain('not the password')
  }, 120_000)

  it('accepts an attestation the real cosign attest made with the right predicate', async () => {
    const digest = await publishApp(g.scratch(), repository(), '7.0.0', { cm: configMap('app-config', { v: '7' }) })
    const predicate = join(g.scratch(), 'predicate.json')
    await writeFile(predicate, JSON.stringify({
      cluster: CLUSTER, namespace: g.namespace, environment: 'staging', version: '7.0.0', digest, result: 'healthy',
      readySince: '2026-01-01T00:00:00Z', attestedAt: new Date().toISOString(), berthVersion: 'cosign',
    }))
    await cosign(g, ['attest', '--key', await keyFile(g, 'cosign.key', keys.privateKey), '--type', HEALTH_PREDICATE,
      '--predicate', predicate, '--tlog-upload=false', '--yes', `${repository()}@${digest}`], { COSIGN_PASSWORD: PASSWORD })
    await B().apply(environment(prodNs, 'prod', prodSpec('7.0.0', 'trusted', '1h')))
    const through = await passB()
    expect(ready(through).status).toBe('True')
    expect(through.status?.lastAppliedVersion).toBe('7.0.0')
  }, 120_000)
})

async function keyFile(g: ReturnType<typeof useGround>, name: string, content: string): Promise<string> {
  const dir = join(g.scratch(), 'keys')
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, name), content)
  return join(dir, name)
}

/** The real cosign, offline: no Sigstore TUF lookups, no transparency log, the ground's plain-HTTP registry. */
async function cosign(
  g: ReturnType<typeof useGround>,
  args: string[],
  env: Record<string, string> = {},
): Promise<string> {
  const home = join(g.scratch(), 'cosign-home')
  await mkdir(home, { recursive: true })
  const root = join(home, 'trusted_root.json')
  await writeFile(root, '{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}')
  const verifying = args[0] === 'verify-attestation' ? ['--insecure-ignore-tlog', '--trusted-root', root] : []
  const result = await execa(g.ground.parts.cosign, [...args, '--allow-http-registry', ...verifying], {
    env: { ...env, HOME: home, TUF_ROOT: join(home, 'tuf') },
    reject: false,
  })
  if (result.exitCode !== 0) throw new Error(`cosign ${args[0] ?? ''} failed: ${result.stderr}`)
  return result.stdout
}
