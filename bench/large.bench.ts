/**
 * large: one Environment of many objects (`--objects 1000,2500,5000`; a third each ConfigMaps, Services and
 * Deployments), applied by a real `berth reconciler` process run as its Deployment runs it, against
 * `kubectl apply --server-side -f <dir>` of the same files on the same apiserver. Measures:
 * - apply: from creating the Environment until the pass that applies it ends (pull, checks, dry run
 *   of every object, apply), against kubectl's apply alone; Ready (the controller-manager's
 *   Deployments, which berth waits for and kubectl does not) is a figure beside it;
 * - in-sync: a pass asked for with `berth.dev/reconcile-requested-at` while nothing changed, p50 of 5;
 * - prune: a version with the first half only, from editing the pin until Ready and the other half gone;
 * - drift: 20 edits of owned objects behind berth's back, time until each is undone, p50;
 * - rss: the reconciler's peak resident memory (VmHWM) over the run.
 * Each point (default 1,000, 2,500 and 5,000 objects) runs on a fresh ground and is said on stderr;
 * stdout gets one line `large: …` for the largest, the curve at its end. `--record <file>` writes
 * the points as JSON (docs/figures/large.json feeds docs/pictures/cost-curves.svg).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { execa } from 'execa'
import { publishApp } from '../test/support/environments.ts'
import { API_VERSION, type Environment, KIND } from '../api/environment.ts'
import { OWNER_LABELS, RECONCILE_REQUESTED_AT } from '../api/well-known.ts'
import { NODE_MEMORY_OPTIONS } from '../install/manifests.ts'
import type { Kube } from '../shared/kube.ts'
import { writeYaml } from '../shared/yaml-writer.ts'
import { startReconciler } from '../test/support/reconciler-process.ts'
import { onFreshGround } from './support/ground.ts'
import { median, peakRssMiB, timed } from './support/stats.ts'

const { values: flags } = parseArgs({
  args: process.argv.slice(3),
  options: { objects: { type: 'string', default: '1000,2500,5000' }, record: { type: 'string' } },
})
const POINTS = flags.objects.split(',').map(Number).sort((a, b) => a - b)
const EDITS = 20
const IN_SYNC_ROUNDS = 5
const say = (line: string): boolean => process.stderr.write(`bench: ${line}\n`)
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

type Point = {
  objects: number
  applyMs: number
  kubectlMs: number
  readyMs: number
  inSyncMs: number
  pruneMs: number
  driftP50Ms: number
  driftMaxMs: number
  rssMiB: number
}

/** Object `i`: a ConfigMap, a Service or a Deployment (no replicas: the bench measures berth, not pods). */
function object(i: number): { name: string; object: object } {
  const name = `obj-${String(i).padStart(4, '0')}`
  const labels = { app: name }
  if (i % 3 === 0) {
    return { name, object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { key: `value-${i}` } } }
  }
  if (i % 3 === 1) {
    const spec = { selector: labels, ports: [{ port: 80, targetPort: 8080 }] }
    return { name, object: { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec } }
  }
  const container = { name: 'app', image: 'registry.example/app:1.0.0', ports: [{ containerPort: 8080 }] }
  const template = { metadata: { labels }, spec: { containers: [container] } }
  const spec = { replicas: 0, selector: { matchLabels: labels }, template }
  return { name, object: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name }, spec } }
}

process.env.SOURCE_DATE_EPOCH = '1700000000'
const points: Point[] = []
for (const objects of POINTS) points.push(await measure(objects))
if (flags.record) {
  const recorded = { date: new Date().toISOString().slice(0, 10), nodeOptions: NODE_MEMORY_OPTIONS, points }
  await writeFile(flags.record, `${JSON.stringify(recorded, null, 2)}\n`)
}
const p = points.at(-1)
if (p) {
  const each = (f: (q: Point) => number): string => points.map((q) => (f(q) / 1000).toFixed(1)).join('/')
  process.stdout.write(
    `large: ${p.objects} objects; apply ${p.applyMs.toFixed(0)} ms (kubectl ${p.kubectlMs.toFixed(0)} ms, ratio `
    + `${(p.applyMs / p.kubectlMs).toFixed(2)}, goal <= 0.5; Ready ${p.readyMs.toFixed(0)} ms); in-sync `
    + `${p.inSyncMs.toFixed(0)} ms; prune ${p.objects - Math.floor(p.objects / 2)} ${p.pruneMs.toFixed(0)} ms; drift p50 `
    + `${p.driftP50Ms.toFixed(0)} ms (goal < 1000 ms, max ${p.driftMaxMs.toFixed(0)} ms); rss ${p.rssMiB.toFixed(0)} MiB `
    + `(NODE_OPTIONS ${NODE_MEMORY_OPTIONS}); curve ${points.map((q) => q.objects).join('/')}: apply `
    + `${each((q) => q.applyMs)} s, kubectl ${each((q) => q.kubectlMs)} s\n`,
  )
}

/** One point of the curve on a ground of its own. */
async function measure(objects: number): Promise<Point> {
  const half = Math.floor(objects / 2)
  return await onFreshGround('berth-bench-large-', say, async ({ ground, kube, work, started: track }) => {
    for (const name of ['large', 'large-kubectl'])
      await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })
    const all = Array.from({ length: objects }, (_, i) => object(i))
    const repository = `${ground.registries.plain.host}/bench/large`
    const asFiles = (list: typeof all): Record<string, object> =>
      Object.fromEntries(list.map((o) => [o.name, o.object]))
    say(`publishing ${objects} objects and ${half}`)
    await publishApp(work, repository, '1.0.0', asFiles(all))
    await publishApp(work, repository, '1.0.1', asFiles(all.slice(0, half)))

    // The anchor: kubectl's server-side apply of the same files, one per object.
    const kubectlDir = join(work, 'kubectl')
    await mkdir(kubectlDir)
    for (const o of all) await writeFile(join(kubectlDir, `${o.name}.yaml`), writeYaml(o.object))
    const kubectlArgs = ['--kubeconfig', ground.kubeconfig, 'apply', '--server-side', '--field-manager', 'bench']
    say(`kubectl apply --server-side of ${objects} objects`)
    const kubectlMs = await timed(() => execa(ground.parts.kubectl, [...kubectlArgs, '-n', 'large-kubectl', '-f', kubectlDir]))
    // berth starts on a quiet cluster too: once the controllers have caught up with kubectl's Deployments.
    await observed(kube, 'large-kubectl')

    const berth = startReconciler(ground.kubeconfig, join(work, 'cache'), [], { NODE_OPTIONS: NODE_MEMORY_OPTIONS })
    track(berth.child)
    const pid = berth.child.pid ?? 0
    while (!berth.logs().includes('watching Environments')) await sleep(50)
    const ref = { apiVersion: API_VERSION, kind: KIND, metadata: { name: 'app', namespace: 'large' } }
    const source = { repository: `oci://${repository}`, plainHTTP: true }
    const readyOn = async (version: string, generation: number, since: number): Promise<void> => {
      for (;;) {
        const env = await kube.get<Environment>(ref)
        const ready = env?.status?.conditions?.find((c) => c.type === 'Ready')
        const status = env?.status
        if (status?.observedGeneration === generation && status.lastAppliedVersion === version && ready?.status === 'True')
          return
        const stalled = env?.status?.conditions?.some((c) => c.type === 'Stalled' && c.status === 'True')
        if ((stalled || ready?.reason === 'HealthCheckFailed') && ready && status?.observedGeneration === generation)
          throw new Error(`${version} failed: ${ready.reason}: ${ready.message}`)
        if (performance.now() - since > 900_000) throw new Error(`${version} not Ready within 15 minutes`)
        await sleep(100)
      }
    }

    say(`berth: first apply of ${objects} objects`)
    let started = performance.now()
    await kube.apply({
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: { name: 'app', namespace: 'large' },
      spec: { source, version: '1.0.0', path: 'app', interval: '1h', timeout: '15m' },
    })
    const passes = (): number => berth.logs().split('\n').filter((l) => l.includes('"msg":"reconciled"')).length
    while (passes() === 0) await sleep(20)
    const applyMs = performance.now() - started
    await readyOn('1.0.0', 1, started)
    const readyMs = performance.now() - started

    // A pass with nothing changed, as the interval or `berth reconcile` asks for one.
    const inSync: number[] = []
    for (let round = 0; round < IN_SYNC_ROUNDS; round++) {
      const at = `bench-${round}`
      inSync.push(
        await timed(async () => {
          await kube.mergePatch(ref, { metadata: { annotations: { [RECONCILE_REQUESTED_AT]: at } } })
          while ((await kube.get<Environment>(ref))?.status?.lastHandledReconcileAt !== at) await sleep(20)
        }),
      )
    }

    // Drift on one of the objects, a different one each time.
    const drift: number[] = []
    for (let i = 0; i < EDITS; i++) {
      const name = `obj-${String(Math.floor((i * objects) / EDITS / 3) * 3).padStart(4, '0')}`
      const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'large' } }
      const edited = performance.now()
      const expected = (await kube.get<{ data: Record<string, string> }>(cm))?.data.key
      await kube.mergePatch(cm, { data: { key: 'edited' } })
      for (;;) {
        if ((await kube.get<{ data?: Record<string, string> }>(cm))?.data?.key === expected) break
        if (performance.now() - edited > 60_000) throw new Error(`drift of ${name} not corrected within 60 s`)
        await sleep(10)
      }
      drift.push(performance.now() - edited)
      await sleep(200)
    }

    say(`berth: a version without ${objects - half} of them`)
    started = performance.now()
    const patched = await kube.mergePatch<{ metadata: { generation: number } }>(ref, { spec: { version: '1.0.1' } })
    await readyOn('1.0.1', patched.metadata.generation, started)
    const pruneMs = performance.now() - started
    const selector = `${OWNER_LABELS.name}=app,${OWNER_LABELS.namespace}=large`
    let left = 0
    for (const [apiVersion, kind] of [['v1', 'ConfigMap'], ['v1', 'Service'], ['apps/v1', 'Deployment']] as const)
      left += (await kube.list(apiVersion, kind, { namespace: 'large', labelSelector: selector })).length
    if (left !== half) throw new Error(`after the prune ${left} objects are left, not ${half}`)

    const point: Point = {
      objects,
      applyMs,
      kubectlMs,
      readyMs,
      inSyncMs: median(inSync),
      pruneMs,
      driftP50Ms: median(drift),
      driftMaxMs: Math.max(...drift),
      rssMiB: await peakRssMiB(pid),
    }
    say(`${objects}: ${JSON.stringify(point)}`)
    return point
  })
}

/** Until the Deployment controller has observed every Deployment in `namespace`. */
async function observed(kube: Kube, namespace: string): Promise<void> {
  type Deployment = { metadata: { generation?: number }; status?: { observedGeneration?: number } }
  for (;;) {
    const deployments = await kube.list<Deployment>('apps/v1', 'Deployment', { namespace })
    if (deployments.every((d) => d.status?.observedGeneration === d.metadata.generation)) return
    await sleep(2000)
  }
}
