import { beforeAll, describe, expect, it } from 'vitest'
import type { Environment } from '../api/environment.ts'
import { configMap } from './support/config-repo.ts'
import { environment, installCrd, passes, publishApp } from './support/environments.ts'
import { useGround } from './support/ground.ts'
import { namespacedUser, type Rule, type TestUser } from './support/users.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'

describe('a delete that fails is retried, never forgotten', () => {
  let user: TestUser | undefined
  const rules = (canDelete: boolean): Rule[] => [
    {
      apiGroups: ['berth.dev'],
      resources: ['environments', 'environments/status'],
      verbs: ['get', 'list', 'watch', 'patch', 'update'],
    },
    {
      apiGroups: [''],
      resources: ['configmaps'],
      verbs: ['get', 'list', 'create', 'patch', ...(canDelete ? ['delete'] : [])],
    },
    { apiGroups: [''], resources: ['events'], verbs: ['create'] },
  ]
  const harness = passes(g, () => (user as TestUser).kube)
  const envRef = harness.envRef('app')
  const pass = (): Promise<Environment> => harness.pass('app')

  beforeAll(async () => {
    await installCrd(g.kube())
    user = await namespacedUser(g, 'reconciler', rules(false))
  })

  it('keeps the object in the inventory and says so, then deletes it once it can', async () => {
    const repository = `${g.ground.registries.plain.host}/${g.repository}/app`
    await publishApp(g.scratch(), repository, '1.0.0', {
      a: configMap('stays', { v: '1' }),
      b: configMap('leaves', { v: '1' }),
    })
    await publishApp(g.scratch(), repository, '1.1.0', { a: configMap('stays', { v: '2' }) })
    await g
      .kube()
      .apply(
        environment(g.namespace, 'app', {
          source: { repository: `oci://${repository}`, plainHTTP: true },
          version: '1.0.0',
        }),
      )
    expect((await pass()).status?.inventory?.map((e) => e.name).sort()).toEqual(['leaves', 'stays'])

    await g.kube().mergePatch(envRef, { spec: { version: '1.1.0' } })
    const failed = await pass()
    expect(failed.status?.conditions?.find((c) => c.type === 'Ready')?.message).toContain(
      `could not prune ConfigMap ${g.namespace}/leaves`,
    )
    expect(failed.status?.inventory?.map((e) => e.name).sort()).toEqual(['leaves', 'stays'])
    expect(
      await g.kube().get({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'leaves', namespace: g.namespace } }),
    ).toBeDefined()

    await user?.grant(rules(true))
    const retried = await pass()
    expect(retried.status?.inventory?.map((e) => e.name)).toEqual(['stays'])
    expect(
      await g.kube().get({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'leaves', namespace: g.namespace } }),
    ).toBeUndefined()
    expect(retried.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'True',
      message: 'applied 1.1.0',
    })
  })
})
