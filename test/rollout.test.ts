/**
 * Real rollouts: the Deployment and ReplicaSet controllers, the scheduler and kwok's simulated
 * nodes run what berth applies. A version whose pods can never be scheduled fails its rollout the
 * way Kubernetes says it does (ProgressDeadlineExceeded), and berth rolls back on its own.
 */
import { join } from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Environment } from '../api/environment.ts'
import { AUTOMATIC_ROLLBACK } from '../reconciler/pass/phases.ts'
import { deployment } from './support/config-repo.ts'
import { applyEnvironment, installCrd, passes, publishApp } from './support/environments.ts'
import { eventually } from './support/eventually.ts'
import { failureOf } from './support/failure.ts'
import { ROOT, useGround } from './support/ground.ts'
import { type ReconcilerProcess, startReconciler } from './support/reconciler-process.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'

type Deploy = {
  spec: { template: { spec: { containers: Array<{ image: string }> } } }
  status?: {
    availableReplicas?: number
    updatedReplicas?: number
    conditions?: Array<{ type: string; reason?: string }>
  }
}

describe('real rollouts on simulated nodes', () => {
  let repository = ''
  let reconciler: ReconcilerProcess | undefined
  const { envRef } = passes(g)
  const env = (name: string): Promise<Environment | undefined> => g.kube().get<Environment>(envRef(name))
  const ready = (e: Environment | undefined): { status?: string; reason?: string; message?: string } | undefined =>
    e?.status?.conditions?.find((c) => c.type === 'Ready')
  const live = (namespace: string): Promise<Deploy | undefined> =>
    g.kube().get<Deploy>({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'shop', namespace } })
  const berth = (args: string[]): Promise<{ stdout: string; stderr: string }> =>
    execa(process.execPath, [
      join(ROOT, 'bin/berth.js'),
      ...args,
      '-n',
      g.namespace,
      '--kubeconfig',
      g.ground.kubeconfig,
    ])
  const shop = (image: string, cpu: string): object =>
    deployment('shop', {
      replicas: 2,
      progressDeadlineSeconds: 5,
      template: {
        metadata: { labels: { app: 'shop' } },
        spec: { containers: [{ name: 'shop', image, resources: { requests: { cpu } } }] },
      },
    })

  beforeAll(async () => {
    await installCrd(g.kube())
    for (const ns of ['staging', 'prod']) {
      await g.kube().apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `${g.namespace}-${ns}` } })
    }
    repository = `${g.ground.registries.plain.host}/${g.repository}/shop`
    await publishApp(g.scratch(), repository, '1.0.0', { shop: shop('example.com/shop:1.0', '100m') })
    // More CPU than any simulated node has: the pods stay Pending, the rollout never completes.
    await publishApp(g.scratch(), repository, '2.0.0', { shop: shop('example.com/shop:2.0', '64') })
    reconciler = startReconciler(g.ground.kubeconfig, join(g.scratch(), 'cache'), ['--namespace', g.namespace])
    await applyEnvironment(g, 'staging', repository, {
      version: '1.0.0',
      targetNamespace: `${g.namespace}-staging`,
      rollback: 'onFailure',
    })
    await applyEnvironment(g, 'prod', repository, {
      version: '1.0.0',
      targetNamespace: `${g.namespace}-prod`,
      promotion: { from: 'staging' },
    })
  })
  afterAll(() => {
    reconciler?.kill()
  })

  it('a version rolls out for real: Ready only once the controllers report it available, pods Running', async () => {
    for (const name of ['staging', 'prod'])
      await eventually(
        () => env(name),
        (e) => ready(e)?.status === 'True',
        30_000,
      )
    expect((await live(`${g.namespace}-staging`))?.status?.availableReplicas).toBe(2)
    const phases = await g.kubectl([
      'get',
      'pods',
      '-n',
      `${g.namespace}-staging`,
      '-o',
      'jsonpath={.items[*].status.phase}',
    ])
    expect(phases.split(' ')).toEqual(['Running', 'Running'])
  })

  it('a rollout that cannot complete fails (ProgressDeadlineExceeded), berth rolls back on its own, promote --wait exits non-zero', async () => {
    const failed = await failureOf<{ exitCode: number; stderr: string }>(
      berth(['promote', 'staging', '--to', '2.0.0', '--wait', '--timeout', '60s']),
    )
    expect(failed.exitCode).not.toBe(0)
    expect(failed.stderr).toContain('2.0.0 failed its health check and was rolled back; running 1.0.0')
    const staging = await env('staging')
    expect(ready(staging)).toMatchObject({ status: 'False', reason: 'RolledBack' })
    const history = staging?.status?.history ?? []
    expect(history.at(-2)).toMatchObject({ version: '2.0.0', result: 'HealthCheckFailed' })
    // The rollback is berth's own doing, not the last promoter's.
    expect(history.at(-1)).toMatchObject({ version: '1.0.0', result: 'Succeeded', by: AUTOMATIC_ROLLBACK })
    const events = await g.kube().list<{ reason: string; message: string }>('v1', 'Event', { namespace: g.namespace })
    const rolling = events.find((e) => e.reason === 'RollingBack')
    expect(rolling?.message).toMatch(/Deployment .*\/shop: ProgressDeadlineExceeded: .*berth rolls back on its own/)
    // The old ReplicaSet serves again: both replicas available on the 1.0 image.
    const back = await eventually(
      () => live(`${g.namespace}-staging`),
      (d) => d?.status?.availableReplicas === 2 && d.status.updatedReplicas === 2,
      30_000,
    )
    expect(back?.spec.template.spec.containers[0]?.image).toBe('example.com/shop:1.0')
  })

  it('a gated prod never receives the version that failed on staging', async () => {
    const refused = await failureOf<{ exitCode: number; stderr: string }>(
      berth(['promote', 'prod', '--from', 'staging']),
    )
    expect(refused.stderr).toContain('prod is already pinned to 1.0.0, the newest version that Succeeded on staging')
    expect(refused.stderr).toContain('staging\'s 2.0.0 has not Succeeded there')
    await g.kube().mergePatch(envRef('prod'), { spec: { version: '2.0.0' } })
    const blocked = await eventually(
      () => env('prod'),
      (e) => ready(e)?.reason === 'PromotionBlocked',
      20_000,
    )
    expect(ready(blocked)?.message).toContain('has not been Ready on staging')
    expect((await live(`${g.namespace}-prod`))?.spec.template.spec.containers[0]?.image).toBe('example.com/shop:1.0')
  })

  it('garbage collection and namespace deletion run: a deleted Environment takes its Deployment, ReplicaSets and pods along', async () => {
    const ns = `${g.namespace}-prod`
    await g.kube().delete(envRef('prod'))
    await eventually(
      () => env('prod'),
      (e) => e === undefined,
      30_000,
    )
    // berth deleted the Deployment; the garbage collector deletes what it owned.
    const pods = (): Promise<string> => g.kubectl(['get', 'replicasets,pods', '-n', ns, '-o', 'name'])
    await eventually(pods, (out) => out.trim() === '', 60_000, 500)
    await g.kube().delete({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } })
    await eventually(
      () => g.kube().get({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }),
      (n) => n === undefined,
      60_000,
      500,
    )
  }, 120_000)
})
