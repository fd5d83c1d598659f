/**
 * Status as the apiserver keeps it: a field a pass drops is gone when read back (merge patches
 * send null for it), conditions follow kstatus (Reconciling and Stalled never both True, neither
 * left behind when the pass is done, each with observedGeneration), and the structural status
 * schema keeps nothing berth does not define.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import type { Environment } from '../api/environment.ts'
import { configMap } from './support/config-repo.ts'
import { applyEnvironment, installCrd, ownNamespace, passes, publishApp } from './support/environments.ts'
import { useGround } from './support/ground.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'

describe('status writes remove what a pass drops', () => {
  let repository = ''
  let v1 = ''
  let v2 = ''
  const { run, envRef } = passes(g)
  const types = (env: Environment): string[] => (env.status?.conditions ?? []).map((c) => c.type).sort()
  // Each Environment in a namespace of its own: they publish the same artifact, and one object has one owner.
  const pin = async (name: string, repo: string, spec: Record<string, unknown>): Promise<void> => {
    await applyEnvironment(g, name, repo, { targetNamespace: await ownNamespace(g, name), ...spec })
  }

  beforeAll(async () => {
    await installCrd(g.kube())
    repository = `${g.ground.registries.plain.host}/${g.repository}/app`
    v1 = await publishApp(g.scratch(), repository, '1.0.0', { a: configMap('one', { v: '1' }) })
    v2 = await publishApp(g.scratch(), repository, '2.0.0', { a: configMap('one', { v: '2' }) })
  })

  it('rolledBackFrom and verified are gone from the apiserver after the pass that drops them', async () => {
    await pin('drop', repository, { version: '1.0.0', rollback: 'onFailure' })
    await run('drop')
    // What an earlier pass left: a rollback away from 2.0.0's digest, and a verified signature.
    await g.kube().patchStatus(envRef('drop'), {
      rolledBackFrom: v2,
      verified: { digest: v1, key: 'cosign.pub', keyId: 'abc', signature: 'sig', keys: 'fp' },
    })
    const seeded = await g.kube().get<Environment>(envRef('drop'))
    expect(seeded?.status).toMatchObject({ rolledBackFrom: v2, verified: { digest: v1 } })

    // 1.0.0 is not the digest rolled back from, and spec.verify is off: the pass drops both fields.
    const { env } = await run('drop')
    expect(env.status).not.toHaveProperty('rolledBackFrom')
    expect(env.status).not.toHaveProperty('verified')
  })

  it('a re-pin to a digest once rolled back from runs that digest (the dropped field does not linger)', async () => {
    await pin('repin', repository, { version: '1.0.0', rollback: 'onFailure' })
    await run('repin')
    await g.kube().patchStatus(envRef('repin'), { rolledBackFrom: v2 })
    // A pass on 1.0.0 drops rolledBackFrom (1.0.0 was never rolled back from) …
    await run('repin')
    // … so pinning 2.0.0 now applies 2.0.0, instead of keeping 1.0.0 as if the rollback still held.
    await pin('repin', repository, { version: '2.0.0', rollback: 'onFailure' })
    const { env } = await run('repin')
    expect(env.status?.lastAppliedDigest).toBe(v2)
    expect(env.status?.lastAppliedVersion).toBe('2.0.0')
  })

  it('conditions: Stalled without Reconciling; both gone once Ready; each with observedGeneration', async () => {
    await pin('conditions', repository, { version: 'banana' })
    const stalled = (await run('conditions')).env
    expect(types(stalled)).toEqual(['Ready', 'Stalled'])
    const generation = stalled.metadata.generation
    for (const c of stalled.status?.conditions ?? []) expect(c.observedGeneration).toBe(generation)

    await pin('conditions', repository, { version: '1.0.0' })
    const ready = (await run('conditions')).env
    expect(types(ready)).toEqual(['Ready'])
    expect(ready.status?.conditions?.[0]).toMatchObject({ status: 'True', observedGeneration: ready.metadata.generation })
  })

  it('suspended: a Suspended condition while it lasts, gone when resumed', async () => {
    await pin('paused', repository, { version: '1.0.0' })
    await run('paused')
    await pin('paused', repository, { version: '1.0.0', suspend: true })
    const suspended = (await run('paused')).env
    expect(suspended.status?.conditions?.find((c) => c.type === 'Suspended')).toMatchObject({ status: 'True' })
    expect(types(suspended)).not.toContain('Reconciling')
    await pin('paused', repository, { version: '1.0.0', suspend: false })
    expect(types((await run('paused')).env)).toEqual(['Ready'])
  })

  it('the structural status schema keeps only what berth defines', async () => {
    await pin('schema', repository, { version: '1.0.0' })
    await run('schema')
    await g.kube().patchStatus(envRef('schema'), { invented: 'x' })
    const env = await g.kube().get<Environment>(envRef('schema'))
    expect(env?.status).not.toHaveProperty('invented')
  })
})
