/**
 * Sharding: three real reconciler processes, shard a, shard b and the unsharded one, each
 * reconciling exactly the Environments labelled for it, each leading on a Lease of its own;
 * relabelling an Environment hands it over.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Environment } from '../api/environment.ts'
import { configMap } from './support/config-repo.ts'
import { applyEnvironment, installCrd, ownNamespace, passes, publishApp } from './support/environments.ts'
import { eventually } from './support/eventually.ts'
import { useGround } from './support/ground.ts'
import { type ReconcilerProcess, startReconciler } from './support/reconciler-process.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'

describe('sharding across reconciler processes', () => {
  const shards: Record<string, ReconcilerProcess> = {}
  let repository = ''
  const { envRef } = passes(g)
  const env = (name: string): Promise<Environment | undefined> => g.kube().get<Environment>(envRef(name))
  const applied = (name: string, version: string): Promise<Environment | undefined> =>
    eventually(
      () => env(name),
      (e) => e?.status?.lastAppliedVersion === version,
      20_000,
    )
  /** The passes a process logged for Environment `name`. */
  const passesOf = (logs: string, name: string): number =>
    logs
      .split('\n')
      .filter((l) => l.includes('"msg":"reconciled"') && l.includes(`"environment":"${g.namespace}/${name}"`)).length
  const labelled = (name: string, shard: string | undefined): Promise<void> =>
    ownNamespace(g, name).then((targetNamespace) => applyEnvironment(g, name, repository, { version: '1.0.0', targetNamespace })).then(() =>
      shard
        ? g
            .kube()
            .mergePatch(envRef(name), { metadata: { labels: { 'berth.dev/shard': shard } } })
            .then(() => undefined)
        : undefined,
    )

  beforeAll(async () => {
    await installCrd(g.kube())
    repository = `${g.ground.registries.plain.host}/${g.repository}/app`
    await publishApp(g.scratch(), repository, '1.0.0', { cm: configMap('one', { v: '1' }) })
    await publishApp(g.scratch(), repository, '1.1.0', { cm: configMap('one', { v: '2' }) })
    // Labelled before any reconciler runs, so no process ever sees another shard's Environment.
    await labelled('ea', 'a')
    await labelled('eb', 'b')
    await labelled('e0', undefined)
    for (const shard of ['a', 'b', '']) {
      const args = ['--namespace', g.namespace, '--leader-elect', '--leader-election-namespace', g.namespace]
      shards[shard] = startReconciler(
        g.ground.kubeconfig,
        join(g.scratch(), `cache-${shard}`),
        shard ? [...args, '--shard', shard] : args,
      )
    }
  })
  afterAll(() => {
    for (const p of Object.values(shards)) p.kill()
  })

  it('each process reconciles exactly its own Environments, leading on a Lease of its own', async () => {
    for (const name of ['ea', 'eb', 'e0']) await applied(name, '1.0.0')
    const logs = (shard: string): string => shards[shard]?.logs() ?? ''
    expect([passesOf(logs('a'), 'ea'), passesOf(logs('a'), 'eb'), passesOf(logs('a'), 'e0')].map((n) => n > 0)).toEqual(
      [true, false, false],
    )
    expect([passesOf(logs('b'), 'ea'), passesOf(logs('b'), 'eb'), passesOf(logs('b'), 'e0')].map((n) => n > 0)).toEqual(
      [false, true, false],
    )
    expect([passesOf(logs(''), 'ea'), passesOf(logs(''), 'eb'), passesOf(logs(''), 'e0')].map((n) => n > 0)).toEqual([
      false,
      false,
      true,
    ])
    for (const lease of ['berth-reconciler', 'berth-reconciler-a', 'berth-reconciler-b']) {
      const held = await g.kube().get<{ spec: { holderIdentity?: string } }>({
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: lease, namespace: g.namespace },
      })
      expect(held?.spec.holderIdentity, lease).toBeTruthy()
    }
  })

  it('relabelling an Environment hands it over: the new shard applies the next pin at once, the old one stops', async () => {
    const before = shards.a?.logs().length ?? 0
    await g.kube().mergePatch(envRef('ea'), { metadata: { labels: { 'berth.dev/shard': 'b' } } })
    await g.kube().mergePatch(envRef('ea'), { spec: { version: '1.1.0' } })
    const moved = Date.now()
    await applied('ea', '1.1.0')
    expect(Date.now() - moved).toBeLessThan(10_000)
    expect(passesOf(shards.b?.logs() ?? '', 'ea')).toBeGreaterThan(0)
    expect(passesOf((shards.a?.logs() ?? '').slice(before), 'ea')).toBe(0)
  })
})
