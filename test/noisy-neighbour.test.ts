/**
 * One tenant's slow registry cannot stall everyone else. A second real registry is frozen with
 * SIGSTOP (the kernel still accepts connections; nothing answers). Several Environments point at
 * it; another team's Environment on the healthy registry still reaches Ready at its usual speed
 * through the same real reconciler process, the frozen ones say RegistryBusy naming the host, and
 * /metrics shows what waits on that host.
 */
import { type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Environment } from '../api/environment.ts'
import { startRegistry } from './ground/ground.ts'
import { freePort, stopProcess } from './ground/processes.ts'
import { configMap } from './support/config-repo.ts'
import { applyEnvironment, installCrd, passes, publishApp } from './support/environments.ts'
import { eventually } from './support/eventually.ts'
import { useGround } from './support/ground.ts'
import { startReconciler } from './support/reconciler-process.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'

describe('a frozen registry does not starve Environments that use another', () => {
  let frozen = ''
  let frozenPid = 0
  let reconciler: ChildProcess | undefined
  let metricsPort = 0
  const { envRef, ready } = passes(g)
  const env = (name: string): Promise<Environment | undefined> => g.kube().get<Environment>(envRef(name))

  beforeAll(async () => {
    await installCrd(g.kube())
    const started = await startRegistry(g.ground.parts.registry, g.scratch(), 'frozen', `127.0.0.1:${await freePort()}`)
    frozen = started.host
    frozenPid = started.started.pid
    await eventually(() => fetch(`http://${frozen}/v2/`).then((r) => r.ok, () => false), (ok) => ok, 20_000)
    process.kill(frozenPid, 'SIGSTOP')
    const healthy = `${g.ground.registries.plain.host}/${g.repository}/app`
    await publishApp(g.scratch(), healthy, '1.0.0', { cm: configMap('team-settings', { v: '1' }) })
    for (let i = 0; i < 4; i++) {
      // Each pinned to its own version: no shared lookup, each pass asks the frozen registry itself.
      await applyEnvironment(g, `stuck-${i}`, `${frozen}/tenant/app`, { version: `1.0.${i}`, interval: '1h' })
    }
    metricsPort = await freePort()
    reconciler = startReconciler(g.ground.kubeconfig, join(g.scratch(), 'cache'), [
      '-n', g.namespace, '--concurrency', '4', '--metrics-address', `127.0.0.1:${metricsPort}`,
    ]).child
    // The four frozen passes have started and hold what they can before the other team arrives.
    await eventually(
      () => Promise.all([0, 1, 2, 3].map((i) => env(`stuck-${i}`))),
      (envs) => envs.filter((e) => ready(e ?? ({} as Environment))?.reason === 'RegistryBusy').length >= 2,
      30_000,
    )
    await applyEnvironment(g, 'team', healthy, { version: '1.0.0' })
  }, 120_000)
  afterAll(async () => {
    reconciler?.kill('SIGKILL')
    process.kill(frozenPid, 'SIGCONT')
    await stopProcess(frozenPid)
  })

  it('the other team\'s Environment reaches Ready in seconds, not after the frozen registry\'s deadline', async () => {
    const started = Date.now()
    const team = await eventually(() => env('team'), (e) => ready(e ?? ({} as Environment))?.status === 'True', 20_000)
    expect(Date.now() - started).toBeLessThan(15_000)
    expect(team?.status?.lastAppliedVersion).toBe('1.0.0')
  })

  it('the frozen ones say why, naming the host; /metrics shows what waits on it', async () => {
    const stuck = await Promise.all([0, 1, 2, 3].map((i) => env(`stuck-${i}`)))
    const busy = stuck.map((e) => ready(e ?? ({} as Environment))).filter((c) => c?.reason === 'RegistryBusy')
    expect(busy.length).toBeGreaterThanOrEqual(2)
    for (const c of busy) expect(c?.message).toContain(`${frozen} already has 2 requests waiting on it`)
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
    expect(metrics).toContain(`berth_registry_passes_in_flight{host="${frozen}"} 2`)
  })
})
