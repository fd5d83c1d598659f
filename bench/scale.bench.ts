/**
 * scale: N Environments × K objects (default 1,000 × 10; `--environments N --objects K`) with
 * one real `berth reconciler` process against the ground, run as its Deployment runs it (its
 * NODE_OPTIONS memory settings; `--node-options ''` for Node's defaults). Measures:
 * - ready: from the first Environment created until every one is Ready;
 * - rss: the reconciler's peak resident memory (VmHWM) over the whole run;
 * - steady state over two intervals with nothing changing: apiserver requests (the apiserver's own
 *   `apiserver_request_total`, less the ground's background rate measured right after with the
 *   reconciler frozen by SIGSTOP) and reconciler CPU, per Environment per interval;
 * - drift: 20 edits of owned objects behind berth's back, time until each is undone, p50.
 * The anchor, measured in the same run: a full drift check per interval (a dry-run apply of
 * every object, as Flux's kustomize-controller does each interval), its requests counted by the
 * client. Prints one line `scale: …`.
 */
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { execa } from 'execa'
import { publishApp } from '../test/support/environments.ts'
import { configMap } from '../test/support/config-repo.ts'
import { API_VERSION, type Environment, KIND } from '../api/environment.ts'
import { inBatches } from '../reconciler/apply/apply.ts'
import { installEnvironmentCrd } from '../install/crd.ts'
import { NODE_MEMORY_OPTIONS } from '../install/manifests.ts'
import { reconcileEnvironment } from '../reconciler/pass/reconcile.ts'
import { Kube, loadKubeConfig } from '../shared/kube.ts'
import { startGround, stopGround } from '../test/ground/ground.ts'
import { startReconciler } from '../test/support/reconciler-process.ts'
import { median } from './support/stats.ts'

const { values: flags } = parseArgs({
  args: process.argv.slice(3),
  options: {
    'environments': { type: 'string', default: '1000' },
    'objects': { type: 'string', default: '10' },
    // The reconciler's NODE_OPTIONS; by default its Deployment's memory settings. '' for Node's defaults.
    'node-options': { type: 'string', default: NODE_MEMORY_OPTIONS },
  },
})
const ENVIRONMENTS = Number(flags.environments)
const OBJECTS = Number(flags.objects)
const INTERVAL_S = 30
const WINDOW_INTERVALS = 2
const EDITS = 20
const NODE_OPTIONS = flags['node-options']
const say = (line: string): boolean => process.stderr.write(`bench: ${line}\n`)
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

process.env.SOURCE_DATE_EPOCH = '1700000000'
const ground = await startGround({ say })
process.env.BERTH_ORAS = ground.parts.oras
const work = await mkdtemp(join(tmpdir(), 'berth-bench-scale-'))
let reconciler: ChildProcess | undefined
try {
  const kube = new Kube(loadKubeConfig({ kubeconfig: ground.kubeconfig }))
  await installEnvironmentCrd(kube)
  const repository = `${ground.registries.plain.host}/bench/scale`
  const objects: Record<string, object> = {}
  for (let i = 0; i < OBJECTS; i++) objects[`cm-${i}`] = configMap(`cm-${i}`, { key: `value-${i}`, n: String(i) })
  await publishApp(work, repository, '1.0.0', objects)

  const namespaces = Array.from({ length: ENVIRONMENTS }, (_, i) => `scale-${String(i).padStart(4, '0')}`)
  say(`creating ${ENVIRONMENTS} namespaces`)
  await inBatches(namespaces, (name) => kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }))
  // The controllers publish a ConfigMap and a ServiceAccount into each new namespace; let them finish.
  await sleep(10_000)

  const cacheDir = join(work, 'cache')
  const berth = startReconciler(ground.kubeconfig, cacheDir, [], { NODE_OPTIONS })
  reconciler = berth.child
  const pid = reconciler.pid ?? 0
  while (!berth.logs().includes('watching Environments')) await sleep(50)

  const source = { repository: `oci://${repository}`, plainHTTP: true }
  const started = performance.now()
  await inBatches(namespaces, (namespace) =>
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
    if (ready.length === ENVIRONMENTS) break
    if (performance.now() - started > 600_000) throw new Error(`only ${ready.length} Ready after 10 minutes`)
    await sleep(1000)
  }
  const readySeconds = (performance.now() - started) / 1000
  say(`all ${ENVIRONMENTS} Ready in ${readySeconds.toFixed(1)} s`)

  // Steady state: one interval to settle, then two measured with nothing changing.
  await sleep(INTERVAL_S * 1000)
  const windowMs = INTERVAL_S * WINDOW_INTERVALS * 1000
  const cpuBefore = await cpuMs(pid)
  const rate = await requestRate(ground.kubeconfig, ground.parts.kubectl, windowMs)
  const cpu = (await cpuMs(pid)) - cpuBefore
  // The ground's own traffic (controllers, scheduler, kwok's nodes) with berth frozen, its watches open.
  process.kill(pid, 'SIGSTOP')
  const background = await requestRate(ground.kubeconfig, ground.parts.kubectl, windowMs / 2)
  process.kill(pid, 'SIGCONT')
  const perEnvInterval = (value: number): number => value / ENVIRONMENTS / WINDOW_INTERVALS
  const requests = perEnvInterval(Math.max(0, (rate - background) * (windowMs / 1000)))
  const cpuPer = perEnvInterval(cpu)
  say(`steady state: ${requests.toFixed(3)} requests and ${cpuPer.toFixed(2)} ms CPU per Environment per interval`)

  // Drift: edit an owned ConfigMap in a different Environment each time; time until berth undoes it.
  const drift: number[] = []
  for (let i = 0; i < EDITS; i++) {
    const namespace = namespaces[Math.floor((i * ENVIRONMENTS) / EDITS)] ?? ''
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
  const fullCheck = anchor.sent.requests / sample.length

  process.stdout.write(
    `scale: ${ENVIRONMENTS} environments × ${OBJECTS} objects; ready ${readySeconds.toFixed(1)} s (target ≤ 90 s); `
    + `rss ${rssMiB.toFixed(0)} MiB (target ≤ 250 MiB, NODE_OPTIONS ${NODE_OPTIONS || 'none'}); `
    + `requests/env/interval ${requests.toFixed(2)} (target ≤ 1; apiserver ${rate.toFixed(2)} req/s, ${background.toFixed(2)} with berth frozen; full dry-run check ${fullCheck.toFixed(1)}, ratio ${(requests / fullCheck).toFixed(3)}); `
    + `cpu/env/interval ${cpuPer.toFixed(2)} ms; drift p50 ${median(drift).toFixed(0)} ms (target < 1000 ms, max ${Math.max(...drift).toFixed(0)} ms)\n`,
  )
} finally {
  reconciler?.kill('SIGTERM')
  await rm(work, { recursive: true, force: true })
  await stopGround(ground)
}

/** The apiserver's requests per second over `ms`, from its own counter (watches count once, at their start). */
async function requestRate(kubeconfig: string, kubectl: string, ms: number): Promise<number> {
  const before = await requestTotal(kubeconfig, kubectl)
  await sleep(ms)
  const after = await requestTotal(kubeconfig, kubectl)
  // Each reading is one request of its own.
  return (after - before - 1) / (ms / 1000)
}

async function requestTotal(kubeconfig: string, kubectl: string): Promise<number> {
  const { stdout } = await execa(kubectl, ['--kubeconfig', kubeconfig, 'get', '--raw', '/metrics'])
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

async function peakRssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kib = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0)
  return kib / 1024
}
