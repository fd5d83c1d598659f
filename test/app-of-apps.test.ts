/**
 * An artifact never promotes itself: one that holds the Environment being reconciled is refused
 * (SelfReference) with nothing applied; one that holds other Environments (app of apps) applies
 * them, and their history records who really set the pin: the Environment and version whose
 * artifact did it.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { API_VERSION, KIND } from '../api/environment.ts'
import { configMap } from './support/config-repo.ts'
import { applyEnvironment, installCrd, passes, publishApp } from './support/environments.ts'
import { useGround } from './support/ground.ts'
import { Kube, loadKubeConfig } from '../shared/kube.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'

describe('an artifact never promotes', () => {
  let platform = ''
  let app = ''
  // Passes as the reconciler's own identity (with an admin's rights), as in a cluster: where berth install's admission
  // policy stamps a child's promoter, it stamps the reconciler, and history names the parent that pinned it.
  let asReconciler: Kube | undefined
  const reconciler = (): Kube =>
    (asReconciler ??= new Kube(
      loadKubeConfig({
        kubeconfig: g.ground.kubeconfig,
        as: 'system:serviceaccount:berth-system:berth-reconciler',
        asGroups: ['system:masters'],
      }),
    ))
  const { run, ready } = passes(g, reconciler)
  const environmentObject = (name: string, version: string): object => ({
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name },
    spec: { source: { repository: `oci://${app}`, plainHTTP: true }, version, path: 'app' },
  })
  const cm = async (name: string): Promise<string | undefined> =>
    (await g.kube().get<{ data?: Record<string, string> }>({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace: g.namespace },
    }))?.data?.v

  beforeAll(async () => {
    await installCrd(g.kube())
    platform = `${g.ground.registries.plain.host}/${g.repository}/platform`
    app = `${g.ground.registries.plain.host}/${g.repository}/app`
    await publishApp(g.scratch(), app, '1.0.0', { cm: configMap('app-settings', { v: '1' }) })
    await publishApp(g.scratch(), platform, '1.0.0', { base: configMap('platform-base', { v: '1' }) })
    // 1.1.0 holds its own Environment, pinned back to 1.0.0: it would overrule whoever pinned 1.1.0.
    await publishApp(g.scratch(), platform, '1.1.0', {
      base: configMap('platform-base', { v: '1.1' }),
      self: { ...environmentObject('platform', '1.0.0'), spec: { source: { repository: `oci://${platform}` }, version: '1.0.0' } },
    })
    // 1.2.0 holds another Environment: the app of apps.
    await publishApp(g.scratch(), platform, '1.2.0', {
      base: configMap('platform-base', { v: '1.2' }),
      child: environmentObject('child', '1.0.0'),
    })
  })

  it('an artifact that holds its own Environment is refused: SelfReference, nothing applied, the pin stands', async () => {
    await applyEnvironment(g, 'platform', platform, { version: '1.0.0' })
    expect(ready((await run('platform')).env)?.status).toBe('True')
    await applyEnvironment(g, 'platform', platform, { version: '1.1.0' })
    const { env } = await run('platform')
    expect(ready(env)).toMatchObject({ status: 'False', reason: 'SelfReference' })
    expect(ready(env)?.message).toContain(`the artifact holds this Environment (${g.namespace}/platform) itself`)
    expect(ready(env)?.message).toContain('nothing of 1.1.0 was applied; still running 1.0.0')
    expect(env.spec).toMatchObject({ version: '1.1.0' })
    expect(await cm('platform-base')).toBe('1')
  })

  it('other Environments in an artifact are applied, and their history names the Environment and version that pinned them', async () => {
    await applyEnvironment(g, 'platform', platform, { version: '1.2.0' })
    expect(ready((await run('platform')).env)?.status).toBe('True')
    const { env: child } = await run('child')
    expect(ready(child)?.status).toBe('True')
    expect(child.metadata.annotations?.['berth.dev/pinned-by-environment']).toBe(`${g.namespace}/platform 1.2.0`)
    expect(child.status?.history?.at(-1)).toMatchObject({ version: '1.0.0', by: `${g.namespace}/platform 1.2.0` })
    expect(await cm('app-settings')).toBe('1')
  })
})
