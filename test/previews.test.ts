/**
 * Preview environments, the whole loop on real parts: `berth push --preview` publishes to the real registry, a real
 * reconciler process runs the EnvironmentSet and the Environments it makes against the real apiserver (its namespace
 * controller and garbage collector included), `berth unpublish --preview` deletes the tags. Expiry, the limit and the
 * tenancy refusal run set passes by hand, with a clock the test moves.
 */
import { execFile } from 'node:child_process'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Environment } from '../api/environment.ts'
import { type EnvironmentSet, SET_API_VERSION, SET_KIND, setRef } from '../api/environment-set.ts'
import { reconcileSet } from '../reconciler/sets/set-pass.ts'
import { berthYaml, configMap, writeTree } from './support/config-repo.ts'
import { eventsOf, installCrd, testClock } from './support/environments.ts'
import { eventually } from './support/eventually.ts'
import { ROOT, useGround } from './support/ground.ts'
import { type ReconcilerProcess, startReconciler } from './support/reconciler-process.ts'
import { runCompositeAction } from './support/action.ts'

const g = useGround(import.meta.url)
const run = promisify(execFile)
process.env.SOURCE_DATE_EPOCH = '1700000000'

type Obj = {
  metadata: { name: string; deletionTimestamp?: string; labels?: Record<string, string> }
  data?: Record<string, string>
}

describe('preview environments', () => {
  let repository = ''
  let reconciler: ReconcilerProcess | undefined
  const clock = testClock()
  const berth = async (args: string[]): Promise<string> =>
    (await run(process.execPath, [join(ROOT, 'bin/berth.js'), ...args], { env: process.env })).stdout
  /** A config repository whose one environment (`app`) holds the ConfigMap `page` saying `text`. */
  const configRepo = async (text: string, to = repository): Promise<string> =>
    await writeTree(join(g.scratch(), `repo-${Math.random().toString(36).slice(2)}`), {
      'berth.yaml': berthYaml(`oci://${to}`, { app: { manifests: 'app' } }),
      'app/page.yaml': configMap('page', { text }),
    })
  const pushPreview = async (number: number, text: string, to = repository): Promise<string> =>
    await berth(['push', await configRepo(text, to), '--preview', String(number), '--plain-http'])
  const set = (namespace: string, name: string, spec: Record<string, unknown>, from = repository): EnvironmentSet => ({
    apiVersion: SET_API_VERSION,
    kind: SET_KIND,
    metadata: { name, namespace },
    spec: { source: { repository: `oci://${from}`, plainHTTP: true }, previews: {}, ...spec },
  })
  const getSet = async (namespace: string, name: string): Promise<EnvironmentSet> =>
    (await g.kube().get<EnvironmentSet>(setRef(namespace, name))) ?? (() => { throw new Error('no set') })()
  const envsOf = (namespace: string): Promise<Environment[]> =>
    g.kube().list<Environment>('berth.dev/v1alpha1', 'Environment', { namespace })
  const page = (namespace: string): Promise<Obj | undefined> =>
    g.kube().get<Obj>({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'page', namespace } })
  const namespaceOf = (name: string): Promise<Obj | undefined> =>
    g.kube().get<Obj>({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })
  const prNamespace = (n: number): string => `${g.namespace}-pr-${n}`
  const readyOf = (s: EnvironmentSet): string | undefined => s.status?.conditions?.find((c) => c.type === 'Ready')?.reason
  /** One set pass by hand, with the test's clock. */
  const setPass = (namespace: string, name: string): Promise<unknown> =>
    reconcileSet({ kube: g.kube(), cacheDir: join(g.scratch(), 'cache'), now: clock.now }, { namespace, name })
  const ownNs = async (suffix: string): Promise<string> => {
    const namespace = `${g.namespace}-${suffix}`
    await g.kube().apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } })
    return namespace
  }

  /** ServiceAccount `account` may edit `namespace` (a RoleBinding; the account itself is not created). */
  const bindEdit = (namespace: string, account: string): Promise<unknown> =>
    g.kube().apply({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: account, namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
      subjects: [{ kind: 'ServiceAccount', name: account, namespace }],
    })

  beforeAll(async () => {
    await installCrd(g.kube())
    repository = `${g.ground.registries.plain.host}/${g.repository}/shop-config`
    // A release beside the previews: never selected by the set, never deleted by unpublish.
    await berth(['push', await configRepo('release'), '--version', '1.0.0', '--plain-http'])
  })
  afterAll(() => {
    reconciler?.kill()
  })

  it('push → running → push again → close → gone: one Environment per pull request, its objects and Namespace', async () => {
    expect(await pushPreview(1, 'pr 1, push 1')).toContain(`published ${repository}:0.0.0-pr.1.1`)
    expect(await pushPreview(2, 'pr 2, push 1')).toContain(`published ${repository}:0.0.0-pr.2.1`)
    await g.kube().apply(set(g.namespace, 'shop', {
      template: { path: 'app', targetNamespace: `${g.namespace}-pr-{{ .number }}`, interval: '1m' },
      namespaceTemplate: { labels: { 'preview-of': 'shop-{{ .number }}' } },
      url: 'https://pr-{{ .number }}.preview.example.com',
      interval: '2s',
    }))
    reconciler = startReconciler(g.ground.kubeconfig, join(g.scratch(), 'cache'), ['--namespace', g.namespace])
    const running = await eventually(() => getSet(g.namespace, 'shop'), (s) => s.status?.ready === 2, 60_000, 250)
    expect(running.status?.count).toBe(2)
    expect(running.status?.previews?.map((p) => [p.number, p.version, p.environment, p.ready, p.url])).toEqual([
      [1, '0.0.0-pr.1.1', 'shop-pr-1', 'True', 'https://pr-1.preview.example.com'],
      [2, '0.0.0-pr.2.1', 'shop-pr-2', 'True', 'https://pr-2.preview.example.com'],
    ])
    expect((await page(prNamespace(1)))?.data).toEqual({ text: 'pr 1, push 1' })
    expect((await namespaceOf(prNamespace(2)))?.metadata.labels?.['preview-of']).toBe('shop-2')
    const columns = await g.kubectl(['get', 'environmentsets', '-n', g.namespace])
    expect(columns).toMatch(/^NAME\s+PREVIEWS\s+READY\s+STATUS\s+AGE\nshop\s+2\s+2\s+2 previews, 2 Ready/)
    const two = (await envsOf(g.namespace)).find((e) => e.metadata.name === 'shop-pr-2')

    // A new push to pull request 1 moves its pin only.
    await pushPreview(1, 'pr 1, push 2')
    await eventually(() => page(prNamespace(1)), (p) => p?.data?.text === 'pr 1, push 2', 60_000, 250)
    const after = await envsOf(g.namespace)
    expect((after.find((e) => e.metadata.name === 'shop-pr-1')?.spec as { version: string }).version).toBe('0.0.0-pr.1.2')
    expect(after.find((e) => e.metadata.name === 'shop-pr-2')?.metadata.generation).toBe(two?.metadata.generation)

    // Closed: its previews deleted from the registry; its Environment, objects and Namespace go; 2 stays.
    expect(await berth(['unpublish', '--preview', '1', '--repository', `oci://${repository}`, '--plain-http']))
      .toBe('deleted 0.0.0-pr.1.1\ndeleted 0.0.0-pr.1.2\n')
    const tags = (await run(g.ground.parts.oras, ['repo', 'tags', '--plain-http', repository])).stdout.split('\n')
    expect(tags.filter(Boolean).sort()).toEqual(['0.0.0-pr.2.1', '1.0.0'])
    await eventually(() => envsOf(g.namespace), (envs) => !envs.some((e) => e.metadata.name === 'shop-pr-1'), 60_000, 250)
    const going = (ns: Obj | undefined): boolean => ns === undefined || ns.metadata.deletionTimestamp !== undefined
    await eventually(() => namespaceOf(prNamespace(1)), going, 60_000, 250)
    expect((await page(prNamespace(2)))?.data).toEqual({ text: 'pr 2, push 1' })
    const left = await eventually(() => getSet(g.namespace, 'shop'), (s) => s.status?.count === 1, 30_000, 250)
    expect(left.status?.previews?.map((p) => p.number)).toEqual([2])
    const reasons = (await eventsOf(g, 'shop')).map((e) => e.reason)
    expect(reasons).toEqual(expect.arrayContaining(['Created', 'Updated', 'Removed']))

    // Deleting the set removes what it made the same way: Environment (pruned), then its Namespace, then the set.
    await g.kube().delete(setRef(g.namespace, 'shop'))
    await eventually(() => g.kube().get(setRef(g.namespace, 'shop')), (s) => s === undefined, 60_000, 250)
    expect(await envsOf(g.namespace)).toEqual([])
    const gone = await namespaceOf(prNamespace(2))
    expect(gone === undefined || gone.metadata.deletionTimestamp !== undefined).toBe(true)
  }, 240_000)

  it('a preview without a new push for its ttl is removed, and comes back only with a new push', async () => {
    const namespace = await ownNs('ttl')
    await g.kube().apply(set(namespace, 'short', { template: { path: 'app' }, ttl: '1h' }))
    await setPass(namespace, 'short')
    expect((await envsOf(namespace)).map((e) => e.metadata.name)).toEqual(['short-pr-2'])
    clock.later(30 * 60_000)
    await setPass(namespace, 'short')
    expect((await envsOf(namespace)).map((e) => e.metadata.name)).toEqual(['short-pr-2'])
    clock.later(31 * 60_000)
    await setPass(namespace, 'short')
    await eventually(() => envsOf(namespace), (envs) => envs.length === 0, 30_000)
    const expired = await getSet(namespace, 'short')
    expect(expired.status?.expired).toEqual([{ number: 2, version: '0.0.0-pr.2.1' }])
    expect((await eventsOf({ ...g, namespace }, 'short', 'Expired'))[0]?.message)
      .toBe('pull request 2: 0.0.0-pr.2.1 had no new push for 1h; removed')
    await setPass(namespace, 'short')
    expect(await envsOf(namespace)).toEqual([])
    await pushPreview(2, 'pr 2, push 2')
    await setPass(namespace, 'short')
    expect((await envsOf(namespace)).map((e) => (e.spec as { version: string }).version)).toEqual(['0.0.0-pr.2.2'])
  })

  it('maxPreviews: the oldest keep running, the rest are refused (TooManyPreviews); a bad template is InvalidSpec', async () => {
    const namespace = await ownNs('max')
    const limitedRepo = `${repository}-max`
    await pushPreview(3, 'pr 3', limitedRepo)
    await g.kube().apply(set(namespace, 'one', { template: { path: 'app' }, maxPreviews: 1 }, limitedRepo))
    await setPass(namespace, 'one')
    // Pull request 4 arrives later: pull request 3 keeps its place.
    await pushPreview(4, 'pr 4', limitedRepo)
    clock.later(1000)
    await setPass(namespace, 'one')
    const limited = await getSet(namespace, 'one')
    expect(readyOf(limited)).toBe('TooManyPreviews')
    expect(limited.status?.conditions?.[0]?.message).toBe(
      'pull request 4: more previews than maxPreviews 1; the oldest keep running, these wait until one goes',
    )
    expect((await envsOf(namespace)).map((e) => e.metadata.name)).toEqual(['one-pr-3'])
    expect(limited.status?.count).toBe(1)
    expect((await eventsOf({ ...g, namespace }, 'one', 'TooManyPreviews')).length).toBe(1)

    await g.kube().apply(set(namespace, 'bad', { template: { path: 'app', prune: 'sometimes' } }))
    await setPass(namespace, 'bad')
    const bad = await getSet(namespace, 'bad')
    expect(readyOf(bad)).toBe('InvalidSpec')
    expect(bad.status?.conditions?.[0]?.message).toContain('template.prune:')
    expect((await envsOf(namespace)).some((e) => e.metadata.name.startsWith('bad-'))).toBe(false)
  })

  it('a targetNamespace the set\'s ServiceAccount may not write is refused as Forbidden, and nothing lands', async () => {
    const namespace = await ownNs('tenant')
    const elsewhere = await ownNs('elsewhere')
    await g.kube().apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'previewer', namespace } })
    // It may write its own namespace only.
    await bindEdit(namespace, 'previewer')
    await g.kube().apply(set(namespace, 'reach', {
      template: { path: 'app', targetNamespace: elsewhere },
      serviceAccountName: 'previewer',
    }))
    await setPass(namespace, 'reach')
    const refused = await getSet(namespace, 'reach')
    expect(readyOf(refused)).toBe('Forbidden')
    expect(refused.status?.conditions?.[0]?.message).toContain(
      `ServiceAccount ${namespace}/previewer may not write namespace ${elsewhere} (template.targetNamespace)`,
    )
    expect(await envsOf(namespace)).toEqual([])
    expect(await page(elsewhere)).toBeUndefined()
  })

  it('a ServiceAccount bound but never created lends the set no rights: ServiceAccountNotFound, nothing made', async () => {
    const namespace = await ownNs('ghost')
    const ghostly = `${g.ground.registries.plain.host}/${g.repository}/ghost-config`
    await pushPreview(1, 'ghost', ghostly)
    // A RoleBinding may name an account before it exists; impersonating that name would carry the binding's rights.
    await bindEdit(namespace, 'ghost')
    await g.kube().apply(set(namespace, 'haunted', { template: { path: 'app' }, serviceAccountName: 'ghost' }, ghostly))
    await setPass(namespace, 'haunted')
    const refused = await getSet(namespace, 'haunted')
    expect(readyOf(refused)).toBe('ServiceAccountNotFound')
    expect(refused.status?.conditions?.[0]?.message).toContain(`ServiceAccount ${namespace}/ghost does not exist`)
    expect(await envsOf(namespace)).toEqual([])

    // Once the account exists the set goes on by itself, as that account.
    await g.kube().apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'ghost', namespace } })
    await setPass(namespace, 'haunted')
    expect(readyOf(await getSet(namespace, 'haunted'))).toBe('Succeeded')
    expect((await envsOf(namespace)).map((e) => (e.spec as { serviceAccountName?: string }).serviceAccountName)).toEqual(['ghost'])
  })

  it('the preview workflow runs berth\'s own action: a push publishes the next preview, a close removes them', async () => {
    const runAction = (inputs: Record<string, string>): ReturnType<typeof runCompositeAction> =>
      runCompositeAction(join(ROOT, 'action.yml'), {
        scratch: g.scratch(),
        inputs: { 'repository': `oci://${repository}`, 'plain-http': 'true', ...inputs },
        path: [dirname(g.ground.parts.oras), dirname(process.execPath)],
        skip: ['Install berth'],
      })
    const config = await configRepo('pr 9')
    const pushed = await runAction({ config, preview: '9' })
    expect(pushed.outputs.reference).toBe(`${repository}:0.0.0-pr.9.1`)
    expect((await runAction({ config, preview: '9' })).outputs.reference).toBe(`${repository}:0.0.0-pr.9.2`)
    const closed = await runAction({ config, preview: '9', unpublish: 'true' })
    expect(closed.summary).toContain('### Previews of pull request #9 removed')
    expect(closed.summary).toContain('- deleted 0.0.0-pr.9.1\n- deleted 0.0.0-pr.9.2')
    const { stdout } = await run(g.ground.parts.oras, ['repo', 'tags', '--plain-http', repository])
    expect(stdout).not.toContain('0.0.0-pr.9.')
    expect(stdout).toContain('1.0.0')
    const { stdout: lint } = await run(g.ground.parts.actionlint, ['-no-color', '.github/workflows/preview.yml'], { cwd: ROOT })
    expect(lint).toBe('')
  })
})
