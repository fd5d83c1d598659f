import { writeYaml } from '../shared/yaml-writer.ts'
import { beforeAll, describe, expect, it } from 'vitest'
import { configMap, deployment } from './support/config-repo.ts'
import { applyEnvironment, installCrd, passes, publishApp } from './support/environments.ts'
import { useGround } from './support/ground.ts'
import { pushRaw, tarGz } from './support/raw-artifacts.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'

/** What the apiserver validates strictly: a version with one invalid object is refused whole, before anything lands. */
describe('strict validation of what is applied', () => {
  let repository = ''
  const { envRef, run, ready } = passes(g)
  const cm = (name: string): Promise<{ data?: Record<string, string> } | undefined> =>
    g.kube().get({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: g.namespace } })
  const pin = async (version: string): Promise<void> => {
    await g.kube().mergePatch(envRef('app'), { spec: { version } })
  }
  /** Pin `version`, run one pass, and check it was refused with `reason`, leaving 1.0.0 running untouched. */
  const refused = async (version: string, reason: string, message: RegExp): Promise<void> => {
    await pin(version)
    const { env, outcome } = await run('app')
    expect(ready(env)).toMatchObject({ status: 'False', reason, message: expect.stringMatching(message) })
    expect(ready(env)?.message).toContain(`nothing of ${version} was applied; still running 1.0.0`)
    expect(env.status?.conditions?.find((c) => c.type === 'Stalled')).toMatchObject({ status: 'True', reason })
    // An exact pin that cannot work: no retry until the spec changes.
    expect(outcome).toEqual({ next: 'stop' })
    expect(env.status?.lastAppliedVersion).toBe('1.0.0')
    expect((await cm('kept'))?.data).toEqual({ v: '1' })
    expect(await cm('new-one')).toBeUndefined()
  }
  beforeAll(async () => {
    await installCrd(g.kube())
    repository = `${g.ground.registries.plain.host}/${g.repository}/app`
    await publishApp(g.scratch(), repository, '1.0.0', { a: configMap('kept', { v: '1' }) })
    await applyEnvironment(g, 'app', repository, { version: '1.0.0' })
    expect(ready((await run('app')).env)).toMatchObject({ status: 'True' })
  })

  it('an unknown field (replcas) refuses the version with reason Invalid, naming the field, object and file', async () => {
    await publishApp(g.scratch(), repository, '2.0.0', {
      a: configMap('kept', { v: '2' }),
      b: configMap('new-one', { v: '2' }),
      web: deployment('web', { replcas: 3 }),
    })
    const named = `Deployment ${g.namespace}/web \\(app/_cluster_deployment\\.apps_web\\.yaml#1\\) is invalid: `
    await refused('2.0.0', 'Invalid', new RegExp(`${named}.*\\.spec\\.replcas: field not declared in schema`))
    expect(
      await g
        .kube()
        .get({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: g.namespace } }),
    ).toBeUndefined()
  })

  it('a field given twice refuses the version with reason Invalid, naming the field', async () => {
    // The packager refuses this too; a hand-made (Flux-format) artifact can still carry it.
    const doubled = writeYaml(configMap('new-one', { v: '3' })).replace('metadata:', 'data:\n  extra: "1"\nmetadata:')
    await pushRaw(
      g,
      `${repository}:3.0.0`,
      await tarGz({
        './app/kept.yaml': writeYaml(configMap('kept', { v: '3' })),
        './app/new.yaml': doubled,
      }),
    )
    await refused('3.0.0', 'Invalid', /app\/new\.yaml:\d+:\d+: duplicate field "data"/)
  })

  it('an unknown field in a custom resource is refused too (a structural CRD would prune it silently)', async () => {
    const group = `${g.namespace}.example.com`
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: `widgets.${group}` },
      spec: {
        group,
        scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: { spec: { type: 'object', properties: { size: { type: 'integer' } } } },
              },
            },
          },
        ],
      },
    }
    // The CRD lands first (step 2) so the custom resource can be judged; the refusal keeps everything else out.
    await publishApp(g.scratch(), repository, '4.0.0', {
      crd,
      a: configMap('kept', { v: '4' }),
      b: configMap('new-one', { v: '4' }),
      w: { apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name: 'w1' }, spec: { size: 2, colour: 'red' } },
    })
    await pin('4.0.0')
    const { env } = await run('app')
    expect(ready(env)).toMatchObject({
      reason: 'Invalid',
      message: expect.stringMatching(
        /Widget .*\/w1 \(app\/_cluster_widget\..*_w1\.yaml#1\) is invalid: .*\.spec\.colour: field not declared in schema; of 4\.0\.0 only CustomResourceDefinition widgets\..* was applied/,
      ),
    })
    expect((await cm('kept'))?.data).toEqual({ v: '1' })
    expect(await cm('new-one')).toBeUndefined()
  })

  it('a new Namespace is dry-run with the rest: one refusal and not even the Namespace is created', async () => {
    const fresh = `${g.namespace}-fresh`
    await publishApp(g.scratch(), repository, '5.0.0', {
      ns: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: fresh } },
      a: configMap('kept', { v: '5' }),
      bad: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'bad' }, data: { 'not a valid key!': 'x' } },
    })
    await refused('5.0.0', 'Invalid', /not a valid key!/)
    expect(await g.kube().get({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: fresh } })).toBeUndefined()
  })

  it('an object whose name Kubernetes would refuse stops the version as InvalidManifest before any request', async () => {
    await pushRaw(
      g,
      `${repository}:6.0.0`,
      await tarGz({
        './app/kept.yaml': writeYaml(configMap('kept', { v: '6' })),
        './app/evil.yaml': writeYaml({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: '../../x' }, data: {} }),
      }),
    )
    await refused(
      '6.0.0',
      'InvalidManifest',
      /app\/evil\.yaml#1: ConfigMap: metadata\.name "\.\.\/\.\.\/x" is not valid: it must be a lowercase RFC 1123 subdomain/,
    )
  })

  it('a valid version after all that applies, and the stall clears', async () => {
    await publishApp(g.scratch(), repository, '7.0.0', {
      a: configMap('kept', { v: '7' }),
      b: configMap('new-one', { v: '7' }),
    })
    await pin('7.0.0')
    const { env, outcome } = await run('app')
    expect(ready(env)).toMatchObject({ status: 'True', message: 'applied 7.0.0' })
    expect(env.status?.conditions?.some((c) => c.type === 'Stalled')).toBe(false)
    expect(outcome).toEqual({ next: 'requeue', afterMs: 300_000 })
    expect((await cm('new-one'))?.data).toEqual({ v: '7' })
  })

  it('an unknown kind is refused like every other refusal: it says nothing of the version was applied', async () => {
    await publishApp(g.scratch(), repository, '41.0.0', {
      a: configMap('kept', { v: '41' }),
      b: configMap('only-in-41', { v: '41' }),
      gizmo: { apiVersion: 'example.com/v1', kind: 'Gizmo', metadata: { name: 'g' } },
    })
    await pin('41.0.0')
    const { env } = await run('app')
    expect(ready(env)).toMatchObject({ status: 'False', reason: 'NoKind' })
    expect(ready(env)?.message).toContain('the cluster does not serve Gizmo in example.com/v1')
    expect(ready(env)?.message).toContain('nothing of 41.0.0 was applied; still running 7.0.0')
    expect((await cm('kept'))?.data).toEqual({ v: '7' })
    expect(await cm('only-in-41')).toBeUndefined()
  })
})
