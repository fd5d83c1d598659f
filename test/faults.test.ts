/**
 * Faults against real processes, on a ground of this file's own (killing the shared apiserver
 * would fail every other file): the apiserver killed mid-apply, etcd restarted, the registry
 * stopped during a promotion, the reconciler killed mid-apply. Each ends with nothing lost:
 * the Environment converges to its pin, no half-applied version stays, nothing is wrongly pruned.
 * Then disaster recovery: a second, empty cluster given berth's install and the same Environments
 * converges to the same objects.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Environment } from '../api/environment.ts'
import { installEnvironmentCrd } from '../install/crd.ts'
import { Kube, loadKubeConfig } from '../shared/kube.ts'
import { type GroundInfo, startGround, stopGround } from './ground/ground.ts'
import { configMap } from './support/config-repo.ts'
import { environment, publishApp } from './support/environments.ts'
import { eventually } from './support/eventually.ts'
import { useGround } from './support/ground.ts'
import { type ReconcilerProcess, startReconciler } from './support/reconciler-process.ts'
import { stopPart } from './support/restart.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'

const NS = 'faults'
const OBJECTS = 150
type Cm = { metadata: { name: string; labels?: Record<string, string> }; data?: Record<string, string> }

/** Version `v` of a large artifact: ConfigMaps c-<i> (some leave in later versions, some arrive). */
function release(v: number): Record<string, object> {
  const objects: Record<string, object> = {}
  for (let i = 0; i < OBJECTS; i++) if (i >= (v - 1) * 10) objects[`c-${i}`] = configMap(`c-${i}`, { v: String(v) })
  for (let i = 0; i < v * 5; i++) objects[`n-${i}`] = configMap(`n-${i}`, { v: String(v) })
  return objects
}
const expectedNames = (v: number): string[] => Object.keys(release(v)).sort()

describe('faults, each ending with nothing lost', () => {
  let own: GroundInfo | undefined
  let kube: Kube | undefined
  let reconciler: ReconcilerProcess | undefined
  let repository = ''
  const k = (): Kube =>
    kube
    ?? (() => {
      throw new Error('no ground')
    })()
  const ground = (): GroundInfo =>
    own
    ?? (() => {
      throw new Error('no ground')
    })()
  const env = (): Promise<Environment | undefined> =>
    k().get<Environment>({
      apiVersion: 'berth.dev/v1alpha1',
      kind: 'Environment',
      metadata: { name: 'app', namespace: NS },
    })
  const restartReconciler = (): void => {
    reconciler = startReconciler(ground().kubeconfig, join(g.scratch(), 'cache'))
  }
  const pin = (version: string): Promise<unknown> =>
    k().mergePatch(
      { apiVersion: 'berth.dev/v1alpha1', kind: 'Environment', metadata: { name: 'app', namespace: NS } },
      { spec: { version } },
    )
  /** Converged on `v`: Ready on it, exactly its objects at its data, the bystander untouched, the inventory right. */
  const converged = async (v: number, timeoutMs = 60_000): Promise<void> => {
    await eventually(
      env,
      (e) =>
        e?.status?.lastAppliedVersion === `${v}.0.0`
        && e.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true,
      timeoutMs,
    )
    const owned = await k().list<Cm>('v1', 'ConfigMap', { namespace: NS, labelSelector: 'berth.dev/environment=app' })
    expect(owned.map((c) => c.metadata.name).sort()).toEqual(expectedNames(v))
    expect(owned.every((c) => c.data?.v === String(v))).toBe(true)
    expect(
      (await k().get<Cm>({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'bystander', namespace: NS } }))
        ?.data,
    ).toEqual({ mine: 'yes' })
    expect((await env())?.status?.inventory?.map((i) => i.name).sort()).toEqual(expectedNames(v))
  }

  beforeAll(async () => {
    own = await startGround({ say: () => undefined })
    kube = new Kube(loadKubeConfig({ kubeconfig: own.kubeconfig }))
    await installEnvironmentCrd(kube)
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } })
    await kube.apply(
      configMap('bystander', { mine: 'yes' }, NS) as { apiVersion: string; kind: string; metadata: { name: string } },
    )
    repository = `${own.registries.plain.host}/faults/app`
    for (let v = 1; v <= 6; v++) await publishApp(g.scratch(), repository, `${v}.0.0`, release(v))
    restartReconciler()
    await kube.apply(
      environment(NS, 'app', { source: { repository: `oci://${repository}`, plainHTTP: true }, version: '1.0.0' }),
    )
    await converged(1)
  }, 240_000)
  afterAll(async () => {
    reconciler?.kill()
    if (own) await stopGround(own)
  })

  it('the apiserver SIGKILLed in the middle of an apply, restarted on the same etcd: converges; a pin edit after is applied within seconds', async () => {
    await pin('2.0.0')
    // In the middle: berth applies in name order and c-10 comes first, so 2.0.0's c-10 landing means about 150
    // applies are still to come (about a second's work) when the apiserver dies.
    await eventually(
      () => k().get<Cm>({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c-10', namespace: NS } }),
      (c) => c?.data?.v === '2',
      20_000,
      5,
    )
    const before = reconciler?.logs().length ?? 0
    const apiserver = await stopPart(ground(), 'kube-apiserver', 'SIGKILL')
    try {
      // The apply was still under way when the apiserver died: the pass failed applying one of 2.0.0's
      // ConfigMaps (a pass that had finished would have nothing left to fail on).
      const applyFailed = (line: string): boolean =>
        line.includes('"msg":"reconcile failed"') && line.includes('"environment":"faults/app"')
        && /"error":"ConfigMap faults\/[cn]-\d+: cannot reach the Kubernetes API/.test(line)
      await eventually(
        () => Promise.resolve((reconciler?.logs().slice(before) ?? '').split('\n')),
        (lines) => lines.some(applyFailed),
        20_000,
      )
    } finally {
      await apiserver.start()
    }
    await converged(2)
    // The watch came back: a pin edit now is seen at once, not at the next interval.
    const edited = Date.now()
    await pin('3.0.0')
    await converged(3, 30_000)
    expect(Date.now() - edited).toBeLessThan(15_000)
  }, 120_000)

  it('etcd restarted under a running reconciler: converges', async () => {
    const etcd = await stopPart(ground(), 'etcd', 'SIGTERM')
    await etcd.start()
    await pin('4.0.0')
    await converged(4)
  }, 120_000)

  it('the registry stopped during a promotion: unreachable, the version before keeps running, completes on its own once back', async () => {
    const registry = await stopPart(ground(), 'registry-plain', 'SIGTERM')
    await pin('5.0.0')
    const failing = await eventually(
      env,
      (e) =>
        e?.status?.conditions?.some(
          (c) => c.type === 'Ready' && c.status === 'False' && /Registry|Timeout/.test(c.reason),
        ) === true,
      30_000,
    )
    expect(failing?.status?.conditions?.find((c) => c.type === 'Ready')?.message).toContain('still running 4.0.0')
    const cm = await k().get<Cm>({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c-40', namespace: NS } })
    expect(cm?.data).toEqual({ v: '4' })
    await registry.start()
    await converged(5, 90_000)
  }, 150_000)

  it('the reconciler SIGKILLed in the middle of an apply and restarted: converges, inventory right, no orphans', async () => {
    await pin('6.0.0')
    await eventually(
      () => k().get<Cm>({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'n-29', namespace: NS } }),
      (c) => c !== undefined,
      20_000,
      10,
    )
    reconciler?.kill()
    const child = reconciler?.child
    if (child && child.exitCode === null && child.signalCode === null) await new Promise((resolve) => child.once('exit', resolve))
    restartReconciler()
    await converged(6)
  }, 120_000)

  it('disaster recovery: an empty cluster given berth\'s install and the same Environments converges to the same objects', async () => {
    const second = await startGround({ say: () => undefined })
    let rebuilt: ReconcilerProcess | undefined
    try {
      const kube2 = new Kube(loadKubeConfig({ kubeconfig: second.kubeconfig }))
      await installEnvironmentCrd(kube2)
      await kube2.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } })
      // What a backup of the Environments holds: their spec, nothing of their status.
      const original = await env()
      await kube2.apply({
        apiVersion: 'berth.dev/v1alpha1',
        kind: 'Environment',
        metadata: { name: 'app', namespace: NS },
        spec: original?.spec,
      })
      rebuilt = startReconciler(second.kubeconfig, join(g.scratch(), 'cache2'))
      const ref = { apiVersion: 'berth.dev/v1alpha1', kind: 'Environment', metadata: { name: 'app', namespace: NS } }
      await eventually(
        () => kube2.get<Environment>(ref),
        (e) => e?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true,
        60_000,
      )
      const shape = async (client: Kube): Promise<string[]> =>
        (await client.list<Cm>('v1', 'ConfigMap', { namespace: NS, labelSelector: 'berth.dev/environment=app' }))
          .map((c) => `ConfigMap/${NS}/${c.metadata.name} ${JSON.stringify(c.data)}`)
          .sort()
      expect(await shape(kube2)).toEqual(await shape(k()))
      expect((await kube2.get<Environment>(ref))?.status?.lastAppliedDigest).toBe(original?.status?.lastAppliedDigest)
    } finally {
      rebuilt?.kill()
      await stopGround(second)
    }
  }, 180_000)
})
