/**
 * scale: how the reconciler's cost grows with Environments. A curve of points (default 1,000,
 * 2,500 and 5,000 Environments × 10 objects; `--environments 1000,2500 --objects K`), each on a
 * fresh ground with one real `berth reconciler` process run as its Deployment runs it (its
 * NODE_OPTIONS memory settings; `--node-options ''` for Node's defaults). Each point measures:
 * - ready: from the first Environment created until every one is Ready;
 * - rss: the reconciler's peak resident memory (VmHWM) over the whole point;
 * - steady state over two intervals with nothing changing: apiserver requests (the apiserver's own
 *   `apiserver_request_total`, less the ground's background rate measured right after with the
 *   reconciler frozen by SIGSTOP) and reconciler CPU, per Environment per interval;
 * - drift: 20 edits of owned objects behind berth's back, time until each is undone, p50;
 * - who the limit is while Environments become Ready: the CPU of berth, the apiserver and etcd,
 *   and the apiserver's request rate, against the same with berth frozen.
 * The anchor, measured in the same run: a full drift check per interval (a dry-run apply of
 * every object, as Flux's kustomize-controller does each interval), its requests counted by the
 * client. Each point is said on stderr; stdout gets one line `scale: …` for the largest point,
 * the curve at its end. `--record <file>` writes the points as JSON (docs/figures/scale.json
 * feeds docs/pictures/cost-curves.svg: `npm run docs:pictures`).
 */
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { execa } from 'execa'
import { publishApp } from '../test/support/environments.ts'
import { configMap } from '../test/support/config-repo.ts'
import { API_VERSION, type Environment, KIND } from '../api/environment.ts'
import { inParallel } from '../reconciler/apply/apply.ts'
import { NODE_MEMORY_OPTIONS } from '../install/manifests.ts'
import { reconcileEnvironment } from '../reconciler/pass/reconcile.ts'
import { Kube, loadKubeConfig } from '../shared/kube.ts'
import type { GroundInfo } from '../test/ground/ground.ts'
import { startReconciler } from '../test/support/reconciler-process.ts'
import { onFreshGround } from './support/ground.ts'
import { median, peakRssMiB } from './support/stats.ts'

const { values: flags } = parseArgs({
  args: process.argv.slice(3),
  options: {
    'environments': { type: 'string', default: '1000,2500,5000' },
    'objects': { type: 'string', default: '10' },
    // The reconciler's NODE_OPTIONS; by default its Deployment's memory settings. '' for Node's defaults.
    'node-options': { type: 'string', default: NODE_MEMORY_OPTIONS },
    'record': { type: 'string' },
  },
})
const POINTS = flags.environments.split(',').map(Number).sort((a, b) => a - b)
const OBJECTS = Number(flags.objects)
const INTERVAL_S = 30
const WINDOW_INTERVALS = 2
const EDITS = 20
const NODE_OPTIONS = flags['node-options']
const say = (line: string): boolean => process.stderr.write(`bench: ${line}\n`)
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** CPU as a share of one core (1.0 = one core busy) over a window, per process. */
type CpuShare = { berth: number; apiserver: number; etcd: number }

type Point = {
  environments: number
  objects: number
  readySeconds: number
  rssMiB: number
  requestsPerEnvInterval: number
  cpuMsPerEnvInterval: number
  driftP50Ms: number
  driftMaxMs: number
  /** While the Environments became Ready. */
  rollout: { cpu: CpuShare; requestsPerSecond: number }
  /** Steady state: the apiserver's request rate and CPU with berth running, then frozen. */
  steady: {
    requestsPerSecond: number
    frozenRequestsPerSecond: number
    apiserverCpu: number
    frozenApiserverCpu: number
  }
  fullCheckRequests: number
}

process.env.SOURCE_DATE_EPOCH = '1700000000'
const points: Point[] = []
for (const environments of POINTS) points.push(await measure(environments))
if (flags.record) {
  const date = new Date().toISOString().slice(0, 10)
  const recorded = { date, nodeOptions: NODE_OPTIONS, intervalSeconds: INTERVAL_S, points }
  await writeFile(flags.record, `${JSON.stringify(recorded, null, 2)}\n`)
}
const last = points.at(-1)
if (last) {
  const p = last
  const curve = points.map((q) => q.environments).join('/')
  const each = (f: (q: Point) => string): string => points.map(f).join('/')
  process.stdout.write(
    `scale: ${p.environments} environments × ${p.objects} objects; ready ${p.readySeconds.toFixed(1)} s (goal at 5000 ≤ 300 s); `
    + `rss ${p.rssMiB.toFixed(0)} MiB (goal ≤ 300 MiB, NODE_OPTIONS ${NODE_OPTIONS || 'none'}); `
    + `requests/env/interval ${p.requestsPerEnvInterval.toFixed(2)} (goal 0; apiserver ${p.steady.requestsPerSecond.toFixed(2)} req/s, `
    + `${p.steady.frozenRequestsPerSecond.toFixed(2)} with berth frozen; full dry-run check ${p.fullCheckRequests.toFixed(1)}); `
    + `cpu/env/interval ${p.cpuMsPerEnvInterval.toFixed(2)} ms; drift p50 ${p.driftP50Ms.toFixed(0)} ms (goal < 1000 ms, max `
    + `${p.driftMaxMs.toFixed(0)} ms); while rolling out cpu berth ${p.rollout.cpu.berth.toFixed(2)}, apiserver `
    + `${p.rollout.cpu.apiserver.toFixed(2)}, etcd ${p.rollout.cpu.etcd.toFixed(2)} cores; curve ${curve}: `
    + `ready ${each((q) => q.readySeconds.toFixed(0))} s, rss ${each((q) => q.rssMiB.toFixed(0))} MiB, `
    + `cpu/env/interval ${each((q) => q.cpuMsPerEnvInterval.toFixed(2))} ms, drift p50 ${each((q) => q.driftP50Ms.toFixed(0))} ms\n`,
  )
}

/** One point of the curve on a ground of its own. */
async function measure(environments: number): Promise<Point> {
  return await onFreshGround('berth-bench-scale-', say, async ({ ground, kube, work, started: track }) => {
    const repository = `${ground.registries.plain.host}/bench/scale`
    const objects: Record<string, object> = {}
    for (let i = 0; i < OBJECTS; i++) objects[`cm-${i}`] = configMap(`cm-${i}`, { key: `value-${i}`, n: String(i) })
    await publishApp(work, repository, '1.0.0', objects)

    const namespaces = Array.from({ length: environments }, (_, i) => `scale-${String(i).padStart(4, '0')}`)
    say(`${environments}: creating the namespaces`)
    await inParallel(namespaces, (name) => kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }))
    // The controllers publish a ConfigMap and a ServiceAccount into each new namespace: let them finish first.
    await settled(kube, environments)

    const cacheDir = join(work, 'cache')
    const berth = startReconciler(ground.kubeconfig, cacheDir, [], { NODE_OPTIONS })
    track(berth.child)
    const pid = berth.child.pid ?? 0
    while (!berth.logs().includes('watching Environments')) await sleep(50)
    const pids = { berth: pid, apiserver: pidOf(ground, 'kube-apiserver'), etcd: pidOf(ground, 'etcd') }

    const source = { repository: `oci://${repository}`, plainHTTP: true }
    const started = performance.now()
    const cpuAtStart = await cpuOf(pids)
    const requestsAtStart = await requestTotal(ground)
    await inParallel(namespaces, (namespace) =>
      kube.apply({
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name: 'app', namespace, labels: { bench: 'scale' } },
        spec: { source, version: '1.0.0', path: 'app', interval: `${INTERVAL_S}s` },
      }),
    )
    for (;;) {
      const envs = await kube.list<Environment>(API_VERSION, KIND, { labelSelector: 'bench=scale' })
      const ready = envs.filter((e) => e.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
      if (ready.length === environments) break
      if (performance.now() - started > 900_000) throw new Error(`only ${ready.length} Ready after 15 minutes`)
      await sleep(2000)
    }
    const readySeconds = (performance.now() - started) / 1000
    const rollout = {
      cpu: share(cpuAtStart, await cpuOf(pids), readySeconds),
      requestsPerSecond: ((await requestTotal(ground)) - requestsAtStart) / readySeconds,
    }
    say(`${environments}: all Ready in ${readySeconds.toFixed(1)} s; cpu berth ${rollout.cpu.berth.toFixed(2)}, `
      + `apiserver ${rollout.cpu.apiserver.toFixed(2)}, etcd ${rollout.cpu.etcd.toFixed(2)} cores; `
      + `${rollout.requestsPerSecond.toFixed(0)} req/s`)

    // Steady state: one interval to settle, then two measured with nothing changing.
    await sleep(INTERVAL_S * 1000)
    const windowMs = INTERVAL_S * WINDOW_INTERVALS * 1000
    const before = await cpuOf(pids)
    const rate = await requestRate(ground, windowMs)
    const during = share(before, await cpuOf(pids), windowMs / 1000)
    // The ground's own traffic (controllers, scheduler, kwok's nodes) with berth frozen, its watches open.
    process.kill(pid, 'SIGSTOP')
    const frozenBefore = await cpuOf(pids)
    const background = await requestRate(ground, windowMs / 2)
    const frozen = share(frozenBefore, await cpuOf(pids), windowMs / 2000)
    process.kill(pid, 'SIGCONT')
    const perEnvInterval = (value: number): number => value / environments / WINDOW_INTERVALS
    const requests = perEnvInterval(Math.max(0, (rate - background) * (windowMs / 1000)))
    const cpuPer = perEnvInterval(during.berth * windowMs)

    // Drift: edit an owned ConfigMap in a different Environment each time; time until berth undoes it.
    const drift: number[] = []
    for (let i = 0; i < EDITS; i++) {
      const namespace = namespaces[Math.floor((i * environments) / EDITS)] ?? ''
      const ref = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm-0', namespace } }
      const edited = performance.now()
      await kube.mergePatch(ref, { data: { key: 'edited' } })
      for (;;) {
        const live = await kube.get<{ data?: Record<string, string> }>(ref)
        if (live?.data?.key === 'value-0') break
        if (performance.now() - edited > 60_000) throw new Error(`drift in ${namespace} not corrected within 60 s`)
        await sleep(10)
      }
      drift.push(performance.now() - edited)
      await sleep(200)
    }
    const rssMiB = await peakRssMiB(pid)

    // The anchor: a full check of every object, as if nothing vouched for them (what Flux does each interval).
    const anchor = new Kube(loadKubeConfig({ kubeconfig: ground.kubeconfig }))
    const sample = namespaces.slice(0, 20)
    for (const namespace of sample) await reconcileEnvironment({ kube: anchor, cacheDir }, { namespace, name: 'app' })
    const point: Point = {
      environments,
      objects: OBJECTS,
      readySeconds,
      rssMiB,
      requestsPerEnvInterval: requests,
      cpuMsPerEnvInterval: cpuPer,
      driftP50Ms: median(drift),
      driftMaxMs: Math.max(...drift),
      rollout,
      steady: {
        requestsPerSecond: rate,
        frozenRequestsPerSecond: background,
        apiserverCpu: during.apiserver,
        frozenApiserverCpu: frozen.apiserver,
      },
      fullCheckRequests: anchor.sent.requests / sample.length,
    }
    say(`${environments}: ${JSON.stringify(point)}`)
    return point
  })
}

/** Until every namespace has the ConfigMap and ServiceAccount the controllers put there. */
async function settled(kube: Kube, environments: number): Promise<void> {
  for (;;) {
    const roots = (await kube.listAt('v1', 'ConfigMap', { fieldSelector: 'metadata.name=kube-root-ca.crt' })).items
    const accounts = (await kube.listAt('v1', 'ServiceAccount', { fieldSelector: 'metadata.name=default' })).items
    // The ground's own namespaces have theirs too.
    if (roots.length >= environments && accounts.length >= environments) return
    await sleep(1000)
  }
}

function pidOf(ground: GroundInfo, name: string): number {
  const found = ground.processes.find((p) => p.name === name)
  if (!found) throw new Error(`the ground has no ${name} process`)
  return found.pid
}

async function cpuOf(pids: Record<keyof CpuShare, number>): Promise<CpuShare> {
  return { berth: await cpuMs(pids.berth), apiserver: await cpuMs(pids.apiserver), etcd: await cpuMs(pids.etcd) }
}

function share(before: CpuShare, after: CpuShare, seconds: number): CpuShare {
  const of = (key: keyof CpuShare): number => (after[key] - before[key]) / (seconds * 1000)
  return { berth: of('berth'), apiserver: of('apiserver'), etcd: of('etcd') }
}

/** The apiserver's requests per second over `ms`, from its own counter (watches count once, at their start). */
async function requestRate(ground: GroundInfo, ms: number): Promise<number> {
  const before = await requestTotal(ground)
  await sleep(ms)
  const after = await requestTotal(ground)
  // Each reading is one request of its own.
  return (after - before - 1) / (ms / 1000)
}

async function requestTotal(ground: GroundInfo): Promise<number> {
  const { stdout } = await execa(ground.parts.kubectl, ['--kubeconfig', ground.kubeconfig, 'get', '--raw', '/metrics'])
  let total = 0
  for (const line of stdout.split('\n')) {
    if (line.startsWith('apiserver_request_total{')) total += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return total
}

/** User and system CPU of process `pid` so far, in milliseconds. */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(fields[11]) + Number(fields[12])
  return (ticks * 1000) / 100
}
