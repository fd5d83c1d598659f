import { describe, expect, it } from 'vitest'
import { InvalidInputError, RemoteError, WaitingError } from '../../shared/errors.ts'
import { specSchema } from '../../api/environment.ts'
import { failureVerdict, HEALTH_POLL_MS, healthVerdict, type HealthInput, metricVerdict } from './verdict.ts'
import type { MetricJudgement } from '../health/metrics.ts'

const spec = specSchema.parse({ source: { repository: 'oci://r.example/app' }, version: '1.2.0', interval: '1m' })
const t0 = new Date('2026-01-01T00:00:00Z')
const at = (seconds: number): Date => new Date(t0.getTime() + seconds * 1000)
const input = (over: Partial<HealthInput>): HealthInput => ({
  report: { failed: [], waiting: [] },
  spec: { interval: '1m', timeout: '5m' },
  version: '1.2.0',
  since: t0,
  now: at(10),
  ...over,
})

describe('healthVerdict: what the health of the applied objects asks for', () => {
  it('healthy: Ready, history Succeeded, back at the interval', () => {
    expect(healthVerdict(input({}))).toEqual({
      ready: { status: 'True', reason: 'Succeeded', message: 'applied 1.2.0' },
      reconciling: { status: 'False', reason: 'Succeeded', message: 'applied 1.2.0' },
      history: 'Succeeded',
      outcome: { next: 'requeue', afterMs: 60_000 },
    })
  })

  it('healthy but an old object could not be pruned: Ready says so and comes back soon', () => {
    const v = healthVerdict(input({ pruneFailed: ['ConfigMap a/b'] }))
    expect(v.ready).toMatchObject({ status: 'True', message: 'applied 1.2.0; could not prune ConfigMap a/b' })
    expect(v.outcome).toEqual({ next: 'requeue', afterMs: HEALTH_POLL_MS })
  })

  it('rolling out within the timeout: Progressing, polled', () => {
    const v = healthVerdict(input({ report: { failed: [], waiting: ['Deployment a/web: 0 of 3 ready'] } }))
    expect(v.ready).toEqual({ status: 'False', reason: 'Progressing', message: 'waiting for Deployment a/web: 0 of 3 ready' })
    expect(v.reconciling.status).toBe('True')
    expect(v.history).toBe('Progressing')
    expect(v.outcome).toEqual({ next: 'requeue', afterMs: HEALTH_POLL_MS })
  })

  it('still rolling out past the timeout, or an object failed: HealthCheckFailed naming them', () => {
    const late = healthVerdict(input({ now: at(301), report: { failed: [], waiting: ['Deployment a/web: slow'] } }))
    expect(late.ready).toMatchObject({ reason: 'HealthCheckFailed', message: '1.2.0 is unhealthy: Deployment a/web: slow' })
    expect(late.history).toBe('HealthCheckFailed')
    const failed = healthVerdict(input({ report: { failed: ['Job a/j: failed'], waiting: [] } }))
    expect(failed.ready?.reason).toBe('HealthCheckFailed')
    expect(failed.outcome).toEqual({ next: 'requeue', afterMs: 60_000 })
  })

  it('a version of thousands of objects names ten and counts the rest, in Ready and in its failure', () => {
    const waiting = Array.from({ length: 1666 }, (_, i) => `Deployment a/d-${i}: not observed by its controller yet`)
    const v = healthVerdict(input({ report: { failed: [], waiting } }))
    expect(v.ready?.message).toMatch(/^waiting for Deployment a\/d-0: not observed by its controller yet; /)
    expect(v.ready?.message).toContain('Deployment a/d-9: not observed')
    expect(v.ready?.message).not.toContain('Deployment a/d-10:')
    expect(v.ready?.message).toMatch(/; and 1656 more$/)
    const late = healthVerdict(input({ now: at(301), report: { failed: ['Job a/j: failed'], waiting } }))
    expect(late.ready?.message).toMatch(/^1\.2\.0 is unhealthy: Job a\/j: failed; Deployment a\/d-0: .*; and 1657 more$/)
    const unpruned = healthVerdict(input({ pruneFailed: waiting.map((w) => w.split(':')[0] ?? '') }))
    expect(unpruned.ready?.message).toMatch(/could not prune Deployment a\/d-0; .*; and 1656 more$/)
  })

  it('healthy after an automatic rollback: Ready False RolledBack, naming both versions', () => {
    const v = healthVerdict(input({ version: '1.1.0', rolledBackFrom: '1.2.0' }))
    expect(v.ready).toMatchObject({ status: 'False', reason: 'RolledBack' })
    expect(v.ready?.message).toContain('1.2.0 failed its health check and was rolled back; running 1.1.0')
    expect(v.history).toBe('Succeeded')
  })
})

describe('failureVerdict: the error kind decides what comes next', () => {
  it('stalling (an invalid artifact for an exact pin): Stalled, no retry until the spec changes', () => {
    const v = failureVerdict(new InvalidInputError('Invalid', 'bad field'), spec, '; still running 1.1.0')
    expect(v).toMatchObject({
      ready: { status: 'False', reason: 'Invalid', message: 'bad field; still running 1.1.0' },
      reconciling: { status: 'False', reason: 'Invalid' },
      stalled: true,
      outcome: { next: 'stop' },
    })
  })

  it('stalling on a range pin looks again at the interval: a newer release may fix it', () => {
    const ranged = { ...spec, version: '~1.2' }
    expect(failureVerdict(new InvalidInputError('Invalid', 'x'), ranged, '').outcome).toEqual({
      next: 'requeue',
      afterMs: 60_000,
    })
  })

  it('waiting comes back after its own fixed delay, not a growing backoff', () => {
    const v = failureVerdict(new WaitingError('PromotionBlocked', 'gate', 10_000), spec, '')
    expect(v.outcome).toEqual({ next: 'requeue', afterMs: 10_000 })
    expect(v.reconciling).toMatchObject({ status: 'True', reason: 'Waiting' })
    expect(v.stalled).toBeUndefined()
  })

  it('anything else backs off, keeping the error for the queue', () => {
    const error = new RemoteError('RegistryUnreachable', 'down')
    const v = failureVerdict(error, spec, '')
    expect(v.outcome).toEqual({ next: 'backoff', error })
    expect(v.reconciling).toMatchObject({ status: 'True', reason: 'RetryingAfterFailure' })
    expect(failureVerdict(new Error('surprise'), undefined, '').ready?.reason).toBe('ReconcileFailed')
  })
})

describe('metricVerdict: what the metric checks ask for, once the objects are Ready', () => {
  const judged = (over: Partial<MetricJudgement>): MetricJudgement => ({
    checks: [],
    outcome: 'waiting',
    message: 'metric error-rate is 0 (< 0.01); must hold 1m more',
    decidedBy: 'error-rate',
    nextMs: 30_000,
    ...over,
  })
  const healthy = healthVerdict(input({}))

  it('waiting: Progressing, back when the next check is due', () => {
    const v = metricVerdict(judged({}), input({}), healthy)
    expect(v.ready).toEqual({
      status: 'False',
      reason: 'Progressing',
      message: 'objects Ready; waiting for metric error-rate is 0 (< 0.01); must hold 1m more',
    })
    expect(v.history).toBe('Progressing')
    expect(v.outcome).toEqual({ next: 'requeue', afterMs: 30_000 })
  })

  it('passed: Ready says which checks held, the history row too', () => {
    const v = metricVerdict(judged({ outcome: 'passed', message: 'metrics held: error-rate' }), input({}), healthy)
    expect(v.ready).toMatchObject({ status: 'True', reason: 'Succeeded', message: 'applied 1.2.0; metrics held: error-rate' })
    expect(v).toMatchObject({ history: 'Succeeded', check: 'metrics error-rate' })
  })

  it('failed: MetricCheckFailed, naming the check; back at the interval', () => {
    const message = 'metric error-rate: q is 0.5, which is not < 0.01'
    const v = metricVerdict(judged({ outcome: 'failed', message }), input({}), healthy)
    expect(v.ready).toEqual({ status: 'False', reason: 'MetricCheckFailed', message: `1.2.0 is unhealthy: ${message}` })
    expect(v).toMatchObject({ history: 'MetricCheckFailed', check: 'metric error-rate', outcome: { next: 'requeue', afterMs: 60_000 } })
  })

  it('nothing to judge past the timeout: MetricCheckFailed, saying so', () => {
    const v = metricVerdict(judged({ message: 'metric error-rate: no data yet' }), input({ now: at(301) }), healthy)
    expect(v.ready?.reason).toBe('MetricCheckFailed')
    expect(v.ready?.message).toBe('1.2.0 is unhealthy: not proven within spec.timeout 5m: metric error-rate: no data yet')
  })
})
