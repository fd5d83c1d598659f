/**
 * Prunes never cascade into what an Environment does not own. A platform Environment that drops
 * a Namespace holding another Environment's data, or a CRD whose objects another Environment
 * made, keeps it (PruneBlocked, said in Ready and an Event, everything else of the version
 * applied) until the object carries berth.dev/prune-with-contents="true". Against the real
 * apiserver with its garbage collector and namespace controller.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import type { Environment } from '../api/environment.ts'
import { configMap } from './support/config-repo.ts'
import { applyEnvironment, eventsOf, installCrd, passes, publishApp } from './support/environments.ts'
import { eventually } from './support/eventually.ts'
import { useGround } from './support/ground.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'

describe('prunes that would cascade are blocked', () => {
  let platform = ''
  let app = ''
  const { run, ready } = passes(g)
  const team = (): string => `${g.namespace}-team`
  const group = (): string => `${g.namespace.replace(/[^a-z0-9]/g, '')}.example.com`
  const crd = (): object => ({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `widgets.${group()}` },
    spec: {
      group: group(),
      scope: 'Namespaced',
      names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
      versions: [{
        name: 'v1',
        served: true,
        storage: true,
        schema: { openAPIV3Schema: { 'type': 'object', 'x-kubernetes-preserve-unknown-fields': true } },
      }],
    },
  })
  const events = async (reason: string): Promise<string[]> =>
    (await eventsOf(g, 'platform', reason)).map((e) => e.message)
  const namespaceOf = (name: string): Promise<{ metadata: { deletionTimestamp?: string } } | undefined> =>
    g.kube().get({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })

  beforeAll(async () => {
    await installCrd(g.kube())
    platform = `${g.ground.registries.plain.host}/${g.repository}/platform`
    app = `${g.ground.registries.plain.host}/${g.repository}/app`
    const namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: team() } }
    await publishApp(g.scratch(), platform, '1.0.0', { ns: namespace, crd: crd(), base: configMap('base', { v: '1' }) })
    await publishApp(g.scratch(), platform, '2.0.0', { base: configMap('base', { v: '2' }) })
    await publishApp(g.scratch(), app, '1.0.0', {
      data: configMap('app-data', { keep: 'me' }, team()),
      widget: { apiVersion: `${group()}/v1`, kind: 'Widget', metadata: { name: 'w', namespace: team() }, size: 3 },
    })
  })

  it('a Namespace and a CRD holding another Environment\'s objects are kept; the rest of the version applies', async () => {
    await applyEnvironment(g, 'platform', platform, { version: '1.0.0' })
    expect(ready((await run('platform')).env)?.status).toBe('True')
    await applyEnvironment(g, 'app', app, { version: '1.0.0' })
    // Right after the platform's CRD is Established the apiserver may not serve its kind for a moment: passes retry.
    await eventually(async () => ready((await run('app')).env), (c) => c?.status === 'True', 20_000)

    await applyEnvironment(g, 'platform', platform, { version: '2.0.0' })
    const { env } = await run('platform')
    const message = ready(env)?.message ?? ''
    expect(ready(env)?.status).toBe('True')
    expect(message).toContain('applied 2.0.0; prune blocked:')
    expect(message).toContain(`Namespace ${team()} holds what this Environment does not own: 1 ConfigMap (app-data)`)
    expect(message).toContain(`1 Widget (${team()}/w)`)
    expect(await events('PruneBlocked')).toHaveLength(1)
    // Kept, and still berth's to prune later; the app's data untouched; the rest of 2.0.0 applied.
    expect((await namespaceOf(team()))?.metadata.deletionTimestamp).toBeUndefined()
    expect(env.status?.inventory?.map((i) => i.kind)).toEqual(expect.arrayContaining(['Namespace', 'CustomResourceDefinition']))
    const data = await g.kube().get<{ data?: Record<string, string> }>({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'app-data', namespace: team() } })
    expect(data?.data).toEqual({ keep: 'me' })
    const base = await g.kube().get<{ data?: Record<string, string> }>({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'base', namespace: g.namespace } })
    expect(base?.data).toEqual({ v: '2' })
  })

  it('the annotation lets the prune go ahead, recorded in an Event; the namespace controller then empties it', async () => {
    await g.kube().mergePatch(
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: team() } },
      { metadata: { annotations: { 'berth.dev/prune-with-contents': 'true' } } },
    )
    const { env } = await run('platform')
    expect(ready(env)?.message).not.toContain(`Namespace ${team()}`)
    expect((await events('PruneForced')).join('\n')).toContain(`Namespace ${team()}: deleted with 1 ConfigMap (app-data)`)
    const going = (ns: { metadata: { deletionTimestamp?: string } } | undefined): boolean =>
      ns === undefined || ns.metadata.deletionTimestamp !== undefined
    await eventually(() => namespaceOf(team()), going, 20_000)
    const status: Environment['status'] = env.status
    expect(status?.inventory?.some((i) => i.kind === 'Namespace')).toBe(false)
  })
})
