import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { API_VERSION, type Environment, KIND } from '../reconciler/api.ts'
import { reconcileEnvironment } from '../reconciler/reconcile.ts'
import { Kube, loadKubeConfig } from '../shared/kube.ts'
import { issueCert } from './ground/certs.ts'
import { writeKubeconfig } from './ground/ground.ts'
import { configMap } from './support/config-repo.ts'
import { environment, installCrd, publishApp } from './support/environments.ts'
import { useGround } from './support/ground.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'

describe('a delete that fails is retried, never forgotten', () => {
  let limited: Kube | undefined
  const rules = (canDelete: boolean): object[] => [
    { apiGroups: ['berth.dev'], resources: ['environments', 'environments/status'], verbs: ['get', 'list', 'watch', 'patch', 'update'] },
    { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'create', 'patch', ...(canDelete ? ['delete'] : [])] },
    { apiGroups: [''], resources: ['events'], verbs: ['create'] },
  ]
  const grant = async (canDelete: boolean): Promise<void> => {
    await g.kube().apply({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'reconciler', namespace: g.namespace }, rules: rules(canDelete) })
  }
  const envRef = { apiVersion: API_VERSION, kind: KIND, metadata: { name: 'app', namespace: g.namespace } }
  const pass = async (): Promise<Environment> => {
    await reconcileEnvironment({ kube: limited as Kube, cacheDir: join(g.scratch(), 'cache') }, { namespace: g.namespace, name: 'app' }).catch(() => undefined)
    return (await g.kube().get<Environment>(envRef)) as Environment
  }

  beforeAll(async () => {
    await installCrd(g.kube())
    const user = `reconciler-${g.namespace}`
    const cert = await issueCert(g.ground.ca, g.scratch(), { name: 'reconciler', commonName: user, usage: 'client' })
    const kubeconfig = join(g.scratch(), 'reconciler.kubeconfig')
    await writeKubeconfig(kubeconfig, { server: g.ground.apiserverUrl, ca: g.ground.ca.cert, client: cert, user, context: 'reconciler' })
    await grant(false)
    await g.kube().apply({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'reconciler', namespace: g.namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'reconciler' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
    })
    limited = new Kube(loadKubeConfig({ kubeconfig }))
  })

  it('keeps the object in the inventory and says so, then deletes it once it can', async () => {
    const repository = `${g.ground.registries.plain.host}/${g.repository}/app`
    await publishApp(g.scratch(), repository, '1.0.0', { a: configMap('stays', { v: '1' }), b: configMap('leaves', { v: '1' }) })
    await publishApp(g.scratch(), repository, '1.1.0', { a: configMap('stays', { v: '2' }) })
    await g.kube().apply(environment(g.namespace, 'app', { source: { repository: `oci://${repository}`, plainHTTP: true }, version: '1.0.0' }))
    expect((await pass()).status?.inventory?.map((e) => e.name).sort()).toEqual(['leaves', 'stays'])

    await g.kube().mergePatch(envRef, { spec: { version: '1.1.0' } })
    const failed = await pass()
    expect(failed.status?.conditions?.find((c) => c.type === 'Ready')?.message).toContain('could not prune ConfigMap leaves')
    expect(failed.status?.inventory?.map((e) => e.name).sort()).toEqual(['leaves', 'stays'])
    expect(await g.kube().get({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'leaves', namespace: g.namespace } })).toBeDefined()

    await grant(true)
    const retried = await pass()
    expect(retried.status?.inventory?.map((e) => e.name)).toEqual(['stays'])
    expect(await g.kube().get({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'leaves', namespace: g.namespace } })).toBeUndefined()
    expect(retried.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', message: 'applied 1.1.0' })
  })
})
