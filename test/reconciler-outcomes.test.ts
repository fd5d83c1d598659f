import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { type Environment, environmentRef } from '../api/environment.ts'
import { reconcileEnvironment } from '../reconciler/pass/reconcile.ts'
import { configMap, deployment } from './support/config-repo.ts'
import { applyEnvironment, environment, installCrd, passes, publishApp } from './support/environments.ts'
import { useGround } from './support/ground.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'

/** What each pass asks the queue to do next, by how it ended: the error's kind, or the health of what runs. */
describe('the outcome of a pass decides what comes next', () => {
  let repository = ''
  const { run, ready } = passes(g)
  const create = (name: string, spec: Record<string, unknown>): Promise<void> =>
    applyEnvironment(g, name, repository, { interval: '90s', ...spec })

  beforeAll(async () => {
    await installCrd(g.kube())
    repository = `${g.ground.registries.plain.host}/${g.repository}/app`
    await publishApp(g.scratch(), repository, '1.0.0', { a: configMap('one', { v: '1' }) })
    await publishApp(g.scratch(), repository, '2.0.0', { web: deployment('web') })
  })

  it('Ready: back at the interval', async () => {
    await create('ready', { version: '1.0.0' })
    const { env, outcome } = await run('ready')
    expect(ready(env)?.status).toBe('True')
    expect(outcome).toEqual({ next: 'requeue', afterMs: 90_000 })
  })

  it('still rolling out: polled every 2 s while within the timeout', async () => {
    await create('rolling', { version: '2.0.0', path: 'app' })
    const { env, outcome } = await run('rolling')
    expect(ready(env)?.reason).toBe('Progressing')
    expect(outcome).toEqual({ next: 'requeue', afterMs: 2_000 })
  })

  it('a spec the reconciler refuses stalls: no retry until it changes', async () => {
    // A version the CRD schema lets through (a string) and only the reconciler can judge.
    await create('stalled', { version: 'banana' })
    const { env, outcome } = await run('stalled')
    expect(ready(env)?.reason).toBe('InvalidSpec')
    expect(env.status?.conditions?.find((c) => c.type === 'Stalled')?.status).toBe('True')
    expect(outcome).toEqual({ next: 'stop' })
  })

  it('a promotion gate waits a fixed 10 s, and says so once', async () => {
    await create('gated', { version: '1.0.0', promotion: { from: 'nowhere' } })
    const first = await run('gated')
    const second = await run('gated')
    expect(ready(second.env)?.reason).toBe('PromotionBlocked')
    expect(second.env.status?.conditions?.find((c) => c.type === 'Reconciling')).toMatchObject({
      status: 'True',
      reason: 'Waiting',
    })
    expect([first.outcome, second.outcome]).toEqual([
      { next: 'requeue', afterMs: 10_000 },
      { next: 'requeue', afterMs: 10_000 },
    ])
    const events = await g.kube().list<{ reason: string; involvedObject: { name: string } }>('v1', 'Event', {
      namespace: g.namespace,
    })
    expect(events.filter((e) => e.reason === 'PromotionBlocked' && e.involvedObject.name === 'gated')).toHaveLength(1)
  })

  it('a version not published yet waits 30 s: CI may still be pushing it', async () => {
    await create('early', { version: '9.0.0' })
    const { env, outcome } = await run('early')
    expect(ready(env)?.reason).toBe('VersionNotFound')
    expect(outcome).toEqual({ next: 'requeue', afterMs: 30_000 })
  })

  it('a registry that cannot be reached backs off', async () => {
    await g.kube().apply(
      environment(g.namespace, 'unreachable', {
        source: { repository: 'oci://127.0.0.1:1/app', plainHTTP: true },
        version: '1.0.0',
      }),
    )
    const { env, outcome } = await run('unreachable')
    expect(ready(env)?.reason).toBe('RegistryUnreachable')
    expect(outcome).toMatchObject({
      next: 'backoff',
      error: expect.objectContaining({ reason: 'RegistryUnreachable' }),
    })
  })

  it('suspended: nothing happens until resumed', async () => {
    await create('paused', { version: '1.0.0', suspend: true })
    const { env, outcome } = await run('paused')
    expect(env.status?.conditions?.find((c) => c.type === 'Suspended')?.reason).toBe('Suspended')
    expect(outcome).toEqual({ next: 'stop' })
  })

  it('an interval below the reconciler\'s floor is raised to it, and Ready says so; a 0s timeout is refused', async () => {
    await create('busy', { version: '1.0.0', interval: '1ms' })
    const ctx = { kube: g.kube(), cacheDir: join(g.scratch(), 'cache'), minIntervalMs: 10_000 }
    const outcome = await reconcileEnvironment(ctx, { namespace: g.namespace, name: 'busy' })
    expect(outcome).toEqual({ next: 'requeue', afterMs: 10_000 })
    const env = await g.kube().get<Environment>(environmentRef(g.namespace, 'busy'))
    expect(ready(env ?? ({} as Environment))?.message).toContain(
      'spec.interval 1ms is raised to the reconciler\'s --min-interval 10s',
    )
    // The CRD's own schema refuses a timeout of nothing: the apiserver says so at once.
    await expect(create('instant', { version: '1.0.0', timeout: '0s' })).rejects.toMatchObject({
      code: 422,
      message: expect.stringContaining('spec.timeout'),
    })
  })
})
