/**
 * Drift seen the moment it happens, and a steady state that costs nothing: a real Controller
 * (in this process, so its apiserver requests can be counted) against the ground, with
 * intervals long enough that only the watch of owned objects can explain a prompt correction.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Environment, environmentRef } from '../api/environment.ts'
import { Controller } from '../reconciler/controller/controller.ts'
import { Kube, loadKubeConfig } from '../shared/kube.ts'
import { configMap } from './support/config-repo.ts'
import { environment, installCrd, publishApp } from './support/environments.ts'
import { eventually, until } from './support/eventually.ts'
import { useGround } from './support/ground.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'

type Cm = { metadata: { resourceVersion: string }; data?: Record<string, string> }
type EventList = Array<{ reason: string; message: string; involvedObject: { name: string } }>

describe('owned objects watched for drift', () => {
  let controller: Controller
  let kube: Kube
  let repository = ''
  const logs: Array<Record<string, unknown>> = []
  const cm = (name: string): Promise<Cm | undefined> =>
    g.kube().get<Cm>({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: g.namespace } })
  const env = async (name: string): Promise<Environment | undefined> =>
    await g.kube().get<Environment>(environmentRef(g.namespace, name))
  const ready = async (name: string): Promise<void> => {
    await eventually(
      () => env(name),
      (e) => e?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true,
      20_000,
    )
  }
  const events = async (name: string, reason: string): Promise<EventList> =>
    (await g.kube().list<EventList[number]>('v1', 'Event', { namespace: g.namespace })).filter(
      (e) => e.involvedObject.name === name && e.reason === reason,
    )

  beforeAll(async () => {
    await installCrd(g.kube())
    repository = `${g.ground.registries.plain.host}/${g.repository}/app`
    await publishApp(g.scratch(), repository, '1.0.0', {
      a: configMap('fixed-a', { v: '1' }),
      b: configMap('fixed-b', { v: '1' }),
    })
    await publishApp(g.scratch(), repository, '2.0.0', { c: configMap('warned', { v: '1' }) })
    await publishApp(g.scratch(), repository, '3.0.0', { d: configMap('quiet', { v: '1' }) })
    kube = new Kube(loadKubeConfig({ kubeconfig: g.ground.kubeconfig }))
    controller = new Controller(kube, {
      cacheDir: join(g.scratch(), 'cache'),
      namespace: g.namespace,
      log: (fields) => logs.push(fields),
    })
    await controller.start()
  })
  afterAll(async () => {
    await controller.stop()
  })

  it('re-applies an edited object at once, and only that object', async () => {
    const source = { repository: `oci://${repository}`, plainHTTP: true }
    await g.kube().apply(environment(g.namespace, 'fixed', { source, version: '1.0.0', interval: '1h' }))
    await ready('fixed')
    // Let the watch list what was applied before editing behind berth's back.
    await until(() => Promise.resolve(controller.owned.watched(`${g.namespace}/fixed`) === 2), 10_000)
    const other = (await cm('fixed-b'))?.metadata.resourceVersion

    await g.kubectl([
      'patch',
      'configmap',
      'fixed-a',
      '-n',
      g.namespace,
      '--type=merge',
      '-p',
      '{"data":{"v":"edited"}}',
    ])
    const took = await until(async () => (await cm('fixed-a'))?.data?.v === '1', 10_000)
    // The interval is an hour: only the watch explains a correction within seconds.
    expect(took).toBeLessThan(3_000)
    const corrected = await eventually(
      () => events('fixed', 'DriftCorrected'),
      (e) => e.length > 0,
      5_000,
    )
    expect(corrected[0]?.message).toContain(`ConfigMap ${g.namespace}/fixed-a (data.v)`)
    expect(corrected[0]?.message).not.toContain('fixed-b')
    // The other object was neither re-applied nor written.
    expect((await cm('fixed-b'))?.metadata.resourceVersion).toBe(other)
  })

  it('re-creates a deleted object at once', async () => {
    await g.kubectl(['delete', 'configmap', 'fixed-b', '-n', g.namespace])
    const took = await until(async () => (await cm('fixed-b'))?.data?.v === '1', 10_000)
    expect(took).toBeLessThan(3_000)
    const corrected = await events('fixed', 'DriftCorrected')
    expect(corrected.some((e) => e.message.includes(`ConfigMap ${g.namespace}/fixed-b ((deleted))`))).toBe(true)
  })

  it('puts back at once the owner labels someone stripped', async () => {
    await g.kubectl(['label', 'configmap', 'fixed-a', '-n', g.namespace, 'berth.dev/environment-'])
    const took = await until(async () => {
      const live = await g.kube().get<{ metadata: { labels?: Record<string, string> } }>({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'fixed-a', namespace: g.namespace },
      })
      return live?.metadata.labels?.['berth.dev/environment'] === 'fixed'
    }, 10_000)
    expect(took).toBeLessThan(3_000)
  })

  it('a version that drops an object prunes it, judged by the watch\'s copy', async () => {
    await publishApp(g.scratch(), repository, '1.1.0', { a: configMap('fixed-a', { v: '1' }) })
    await until(() => Promise.resolve(controller.owned.watched(`${g.namespace}/fixed`) === 2), 10_000)
    await g.kube().mergePatch(environmentRef(g.namespace, 'fixed'), { spec: { version: '1.1.0' } })
    await eventually(() => cm('fixed-b'), (b) => b === undefined, 20_000)
    await eventually(() => env('fixed'), (e) => e?.status?.inventory?.length === 1, 20_000)
    expect((await cm('fixed-a'))?.data?.v).toBe('1')
    expect((await events('fixed', 'Pruned')).map((e) => e.message)).toContain(`deleted ConfigMap ${g.namespace}/fixed-b`)
  })

  it('with driftPolicy warn, says Drifted at once and changes nothing', async () => {
    const source = { repository: `oci://${repository}`, plainHTTP: true }
    await g
      .kube()
      .apply(environment(g.namespace, 'warned', { source, version: '2.0.0', interval: '1h', driftPolicy: 'warn' }))
    await ready('warned')
    await until(() => Promise.resolve(controller.owned.watched(`${g.namespace}/warned`) === 1), 10_000)
    await g.kubectl(['patch', 'configmap', 'warned', '-n', g.namespace, '--type=merge', '-p', '{"data":{"v":"kept"}}'])
    const drifted = await eventually(
      () => env('warned'),
      (e) => e?.status?.conditions?.some((c) => c.type === 'Drifted' && c.status === 'True') === true,
      3_000,
    )
    expect(drifted?.status?.conditions?.find((c) => c.type === 'Drifted')?.message).toContain(
      `ConfigMap ${g.namespace}/warned (data.v)`,
    )
    expect((await cm('warned'))?.data?.v).toBe('kept')
  })

  it('sends nothing to the apiserver and shares one registry lookup on quiet periodic passes', async () => {
    const source = { repository: `oci://${repository}`, plainHTTP: true }
    for (const name of ['quiet-1', 'quiet-2']) {
      // Both pinned alike, each applying into a namespace of its own.
      const targetNamespace = `${g.namespace}-${name}`
      await g.kube().apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: targetNamespace } })
      await g
        .kube()
        .apply(environment(g.namespace, name, { source, version: '3.0.0', interval: '1s', targetNamespace }))
    }
    await ready('quiet-1')
    await ready('quiet-2')
    const passes = (): number =>
      logs.filter((l) => l.msg === 'reconciled' && String(l.environment).includes('quiet')).length
    // Settle: the first periodic passes (two each) confirm what the watch then vouches for.
    const settled = passes() + 4
    await eventually(() => Promise.resolve(passes()), (n) => n >= settled, 20_000)
    const [requests, lookups, before] = [kube.sent.requests, controller.lookups.made, passes()]
    // Then six more periodic passes: none read, dry-ran, wrote or looked up more than once.
    await eventually(() => Promise.resolve(passes()), (n) => n >= before + 6, 20_000)
    expect(kube.sent.requests - requests).toBe(0)
    expect(controller.lookups.made - lookups).toBeLessThanOrEqual(1)
  })
})
