import type { ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Environment } from '../api/environment.ts'
import { configMap } from './support/config-repo.ts'
import { environment, installCrd, passes, publishApp } from './support/environments.ts'
import { eventually } from './support/eventually.ts'
import { freePort } from './ground/processes.ts'
import { startSecondApiserver } from './support/apiserver.ts'
import { useGround } from './support/ground.ts'
import { startReconciler } from './support/reconciler-process.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'

type Lease = { spec: { holderIdentity?: string; leaseTransitions?: number } }
type Replica = {
  child: ChildProcess
  logs: () => string
  identity: () => string
  leading: () => Promise<string | undefined>
  exited: Promise<number | null>
}

describe('two reconciler replicas with leader election', () => {
  const replicas: Replica[] = []
  const { envRef } = passes(g)
  const lease = (): Promise<Lease | undefined> =>
    g.kube().get<Lease>({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'berth-reconciler', namespace: g.namespace },
    })
  let repository = ''

  const start = async (kubeconfig = g.ground.kubeconfig): Promise<Replica> => {
    const port = await freePort()
    const started = startReconciler(kubeconfig, join(g.scratch(), `cache-${replicas.length}`), [
      '-n',
      g.namespace,
      '--metrics-address',
      `127.0.0.1:${port}`,
      '--leader-elect',
      '--leader-election-namespace',
      g.namespace,
      '--lease-duration',
      '3s',
      '--renew-deadline',
      '2s',
      '--retry-period',
      '500ms',
    ])
    const { child, logs } = started
    const identity = (): string => {
      const line = logs()
        .split('\n')
        .find((l) => l.includes('"msg":"waiting for the lease"'))
      return line ? (JSON.parse(line) as { identity: string }).identity : ''
    }
    // The berth_leader gauge, as Prometheus would scrape it.
    const leading = async (): Promise<string | undefined> =>
      /^berth_leader (\d)$/m.exec(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text())?.[1]
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
    const replica = { child, logs, identity, leading, exited }
    replicas.push(replica)
    return replica
  }

  beforeAll(async () => {
    await installCrd(g.kube())
    repository = `${g.ground.registries.plain.host}/${g.repository}/app`
    await publishApp(g.scratch(), repository, '1.0.0', { cm: configMap('shared', { v: '1' }) })
    await publishApp(g.scratch(), repository, '1.1.0', { cm: configMap('shared', { v: '2' }) })
  })
  afterAll(() => {
    for (const r of replicas) r.child.kill('SIGKILL')
  })

  it('only the leader reconciles; killing it hands over within the lease duration; SIGTERM releases the lease', async () => {
    const a = await start()
    const b = await start()
    const held = await eventually(lease, (l) => Boolean(l?.spec.holderIdentity), 15_000)
    const leader = [a, b].find((r) => r.identity() === held?.spec.holderIdentity)
    const standby = [a, b].find((r) => r !== leader)
    expect(leader).toBeDefined()
    expect(standby).toBeDefined()

    await g.kube().apply(
      environment(g.namespace, 'app', {
        source: { repository: `oci://${repository}`, plainHTTP: true },
        version: '1.0.0',
      }),
    )
    await eventually(
      () => g.kube().get<Environment>(envRef('app')),
      (e) => e?.status?.lastAppliedVersion === '1.0.0',
      15_000,
    )
    expect(leader?.logs()).toContain('"msg":"applied"')
    expect(standby?.logs()).not.toContain('"msg":"applied"')
    expect(standby?.logs()).not.toContain('watching Environments')
    expect(await leader?.leading()).toBe('1')
    expect(await standby?.leading()).toBe('0')

    leader?.child.kill('SIGKILL')
    const killedAt = Date.now()
    const taken = await eventually(lease, (l) => l?.spec.holderIdentity === standby?.identity(), 15_000)
    expect(Date.now() - killedAt).toBeLessThan(8_000)
    expect(taken?.spec.leaseTransitions).toBeGreaterThanOrEqual(1)

    await g.kube().mergePatch(envRef('app'), { spec: { version: '1.1.0' } })
    await eventually(
      () => g.kube().get<Environment>(envRef('app')),
      (e) => e?.status?.lastAppliedVersion === '1.1.0',
      15_000,
    )
    expect(standby?.logs()).toContain('became leader')
    expect(await standby?.leading()).toBe('1')

    const exited = new Promise<number | null>((resolve) => standby?.child.once('exit', resolve))
    standby?.child.kill('SIGTERM')
    expect(await exited).toBe(0)
    expect((await lease())?.spec.holderIdentity).toBe('')
  })

  it('a leader whose apiserver stops answering (SIGSTOP) exits within its renew deadline; a standby takes over', async () => {
    const second = await startSecondApiserver(g)
    try {
      // The leader reaches the cluster only through the second apiserver; the standby through the ground's.
      const a = await start(second.kubeconfig)
      await eventually(lease, (l) => l?.spec.holderIdentity === a.identity() && a.identity() !== '', 15_000)
      const b = await start()
      await eventually(
        () => b.leading().catch(() => undefined),
        (v) => v === '0',
        10_000,
      )

      process.kill(second.pid, 'SIGSTOP')
      const frozenAt = Date.now()
      expect(await a.exited).toBe(1)
      // Renew deadline 2 s, renewed every 500 ms: out well before a hung request could end on its own.
      expect(Date.now() - frozenAt).toBeLessThan(3_500)
      expect(a.logs()).toContain('"msg":"lost leadership"')
      expect(a.logs()).toContain('leadership lost: exiting')

      // The frozen leader could not release the Lease: the standby takes it once it expires (3 s).
      const taken = await eventually(lease, (l) => l?.spec.holderIdentity === b.identity(), 15_000)
      expect(taken?.spec.leaseTransitions).toBeGreaterThanOrEqual(1)
      await g.kube().mergePatch(envRef('app'), { spec: { version: '1.0.0' } })
      await eventually(
        () => g.kube().get<Environment>(envRef('app')),
        (e) => e?.status?.lastAppliedVersion === '1.0.0',
        15_000,
      )
      expect(b.logs()).toContain('became leader')
    } finally {
      await second.stop()
    }
  })
})
