/**
 * One object, one owner. Two Environments in one namespace whose artifacts hold the same
 * ConfigMap: the second is refused (OwnershipConflict), not last-writer-wins; an explicit
 * take-over moves ownership cleanly and the previous owner lets go (neither corrects it back nor
 * prunes it); deleting either Environment never deletes what the other owns.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { type Environment, environmentRef, type InventoryEntry, OWNER_LABELS } from '../api/environment.ts'
import { slim, type Watched } from '../reconciler/apply/owned.ts'
import { entryKey, prune } from '../reconciler/apply/prune.ts'
import type { Kube, ObjectRef } from '../shared/kube.ts'
import type { KubeObject } from '../shared/manifests.ts'
import { configMap } from './support/config-repo.ts'
import { applyEnvironment, eventsOf, installCrd, passes, publishApp } from './support/environments.ts'
import { eventually } from './support/eventually.ts'
import { useGround } from './support/ground.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'

describe('one object, one owner', () => {
  let first = ''
  let second = ''
  const { run, ready } = passes(g)
  type Cm = { data?: Record<string, string>; metadata: { labels?: Record<string, string> } }
  const cm = (name: string): Promise<Cm | undefined> =>
    g.kube().get({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: g.namespace } })
  /** The test's client, on the real apiserver, running `then` after each read it makes (before answering). */
  const afterReads = (then: (ref: ObjectRef) => Promise<void>): Kube =>
    new Proxy(g.kube(), {
      get(target, property): unknown {
        if (property !== 'get') return (Reflect.get(target, property) as (...a: unknown[]) => unknown).bind(target)
        return async (ref: ObjectRef): Promise<unknown> => {
          const live = await target.get(ref)
          await then(ref)
          return live
        }
      },
    })
  const events = async (env: string, reason: string): Promise<string[]> =>
    (await eventsOf(g, env, reason)).map((e) => e.message)

  beforeAll(async () => {
    await installCrd(g.kube())
    first = `${g.ground.registries.plain.host}/${g.repository}/first`
    second = `${g.ground.registries.plain.host}/${g.repository}/second`
    await publishApp(g.scratch(), first, '1.0.0', { shared: configMap('shared', { from: 'a' }), own: configMap('a-own', { v: '1' }) })
    await publishApp(g.scratch(), second, '1.0.0', { shared: configMap('shared', { from: 'b' }), own: configMap('b-own', { v: '1' }) })
  })

  it('the second Environment to claim an object is refused, naming object and owner; nothing of it applied', async () => {
    await applyEnvironment(g, 'a', first, { version: '1.0.0' })
    expect(ready((await run('a')).env)?.status).toBe('True')
    await applyEnvironment(g, 'b', second, { version: '1.0.0' })
    const { env } = await run('b')
    expect(ready(env)).toMatchObject({ status: 'False', reason: 'OwnershipConflict' })
    expect(ready(env)?.message).toMatch(new RegExp(`ConfigMap ${g.namespace}/shared \\(app/[^)]*shared.yaml#1\\) belongs to Environment ${g.namespace}/a`))
    expect(ready(env)?.message).toContain('nothing of 1.0.0 was applied')
    expect((await cm('shared'))?.data).toEqual({ from: 'a' })
    expect(await cm('b-own')).toBeUndefined()
    // The first keeps its object and says so truthfully.
    expect(ready((await run('a')).env)?.status).toBe('True')
  })

  it('an explicit take-over moves ownership; the previous owner lets go and neither corrects nor prunes it', async () => {
    await g.kube().mergePatch(environmentRef(g.namespace, 'b'), {
      metadata: { annotations: { 'berth.dev/take-over-from': `${g.namespace}/a` } },
    })
    expect(ready((await run('b')).env)?.status).toBe('True')
    expect((await cm('shared'))?.data).toEqual({ from: 'b' })
    expect((await cm('shared'))?.metadata.labels?.['berth.dev/environment']).toBe('b')
    expect((await events('b', 'TookOver')).join()).toContain(`ConfigMap ${g.namespace}/shared from ${g.namespace}/a`)

    // A periodic pass of the previous owner: not drift, not re-applied; gone from its inventory.
    const a = (await run('a')).env
    expect(ready(a)?.status).toBe('True')
    expect((await cm('shared'))?.data).toEqual({ from: 'b' })
    expect(a.status?.inventory?.map((i) => i.name)).not.toContain('shared')
    expect(await events('a', 'DriftCorrected')).toEqual([])
  })

  it('deleting the previous owner never deletes what the other now owns', async () => {
    await g.kube().delete(environmentRef(g.namespace, 'a'))
    // The pass finalizes it: its own objects pruned, then the Environment is gone.
    await expect(run('a')).rejects.toThrow('Environment a is gone')
    await eventually(() => g.kube().get<Environment>(environmentRef(g.namespace, 'a')), (e) => e === undefined, 20_000)
    expect(await cm('a-own')).toBeUndefined()
    expect((await cm('shared'))?.data).toEqual({ from: 'b' })
  })

  it('an object taken over between prune\'s read and its delete is not deleted: the delete names the copy judged', async () => {
    const owner = { name: 'racer', namespace: g.namespace }
    const labels = { [OWNER_LABELS.name]: owner.name, [OWNER_LABELS.namespace]: owner.namespace }
    await g.kube().apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'raced', namespace: g.namespace, labels } })
    // The real apiserver; a take-over lands just after prune has read (and judged) the object, before its delete.
    let taken = false
    const racing = afterReads(async (ref) => {
      if (ref.metadata.name !== 'raced' || taken) return
      taken = true
      await g.kube().mergePatch(ref, { metadata: { labels: { [OWNER_LABELS.name]: 'other' } } })
    })
    const entry = { apiVersion: 'v1', kind: 'ConfigMap', name: 'raced', namespace: g.namespace }
    const result = await prune(racing, [entry], [], owner)
    expect(taken).toBe(true)
    expect(result).toEqual({ deleted: [], failed: [] })
    expect((await cm('raced'))?.metadata.labels?.[OWNER_LABELS.name]).toBe('other')
  })

  it('prune judges by the watch\'s copy without a read, and a stale copy deletes nothing that changed hands', async () => {
    const owner = { name: 'watcher', namespace: g.namespace }
    const labels = { [OWNER_LABELS.name]: owner.name, [OWNER_LABELS.namespace]: owner.namespace }
    const ref = (name: string): ObjectRef => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: g.namespace } })
    const make = async (name: string): Promise<KubeObject> =>
      await g.kube().apply<KubeObject>({ ...ref(name), metadata: { ...ref(name).metadata, labels } })
    const entry = (name: string): InventoryEntry => ({ apiVersion: 'v1', kind: 'ConfigMap', name, namespace: g.namespace })
    const fresh = await make('watched-fresh')
    const stale = await make('watched-stale')
    await make('watched-gone')
    // Taken over after the watch's copy was made: the copy still says it is this Environment's.
    await g.kube().mergePatch(ref('watched-stale'), { metadata: { labels: { [OWNER_LABELS.name]: 'other' } } })
    const reads: string[] = []
    const counting = afterReads((r) => {
      reads.push(r.metadata.name)
      return Promise.resolve()
    })
    const watched = new Map<string, Watched>([
      [entryKey(entry('watched-fresh')), slim(fresh)],
      [entryKey(entry('watched-stale')), slim(stale)],
      [entryKey(entry('watched-gone')), 'gone'],
    ])
    const names = ['watched-fresh', 'watched-stale', 'watched-gone']
    const result = await prune(counting, names.map(entry), [], owner, watched)
    expect(result.deleted.map((e) => e.name)).toEqual(['watched-fresh'])
    expect(result.failed).toEqual([])
    // The fresh one was judged by its copy alone; the stale one read only after the apiserver refused its delete.
    expect(reads.filter((n) => n === 'watched-fresh')).toEqual([])
    expect(reads.filter((n) => n === 'watched-stale').length).toBeGreaterThan(0)
    expect(await cm('watched-fresh')).toBeUndefined()
    expect((await cm('watched-stale'))?.metadata.labels?.[OWNER_LABELS.name]).toBe('other')
    // The watch said gone: forgotten, not deleted (here it was not gone: a watch that lags never costs an object).
    expect((await cm('watched-gone'))?.metadata.labels?.[OWNER_LABELS.name]).toBe(owner.name)
  })
})
