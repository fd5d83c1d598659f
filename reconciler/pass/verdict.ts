/**
 * How a pass ends, decided without I/O so every branch has a unit test: the health of what was
 * applied, or the kind of the error that stopped the pass, becomes a {@link Verdict} (the
 * conditions to write and what the queue does next).
 */
import { BerthError, kindOf, messageOf, WaitingError } from '../../shared/errors.ts'
import { describeObject, type KubeObject } from '../../shared/manifests.ts'
import type { EnvironmentSpec } from '../../api/environment.ts'
import { durationMs } from '../../shared/duration.ts'
import { type Health, health } from '../health/kstatus.ts'
import type { MetricJudgement } from '../health/metrics.ts'
import type { Outcome, Verdict } from './pass.ts'
import { isRange } from '../source/resolve.ts'

/** How soon to look again while objects are still rolling out, or a failed prune waits for a retry. */
export const HEALTH_POLL_MS = 2_000

/** Stalled reasons that something outside the spec may fix: looked at again each interval. */
const LOOK_AGAIN = new Set(['TagMoved', 'OwnershipConflict', 'DecryptionFailed'])

/** History results of a version that failed health: what rolls back (spec.rollback: onFailure). */
export const FAILED_HEALTH: ReadonlySet<string> = new Set(['HealthCheckFailed', 'MetricCheckFailed'])

export type HealthReport = { failed: string[]; waiting: string[] }

/** How many objects a message names before it counts the rest: a version of 5,000 keeps its conditions readable. */
export const NAMED = 10

/** `items` joined by `; `, the first {@link NAMED} named and the rest counted (`; and 1656 more`). */
export function namedFew(items: readonly string[]): string {
  const named = items.slice(0, NAMED).join('; ')
  return items.length > NAMED ? `${named}; and ${items.length - NAMED} more` : named
}

/** Every object that is not Current, named with its health message (kstatus, or `judge`: the CEL rules). */
export function healthOf(
  objects: readonly KubeObject[],
  judge: (object: object) => Health = health,
): HealthReport {
  const report: HealthReport = { failed: [], waiting: [] }
  for (const object of objects) {
    const h = judge(object)
    if (h.status === 'Failed') report.failed.push(`${describeObject(object)}: ${h.message}`)
    else if (h.status === 'InProgress') report.waiting.push(`${describeObject(object)}: ${h.message}`)
  }
  return report
}

export type HealthInput = {
  report: HealthReport
  spec: Pick<EnvironmentSpec, 'interval' | 'timeout'>
  version: string
  /** When this digest was first attempted; the health timeout runs from there. */
  since: Date
  now: Date
  /** Objects that could not be pruned, named: Ready still, but said, and retried soon. */
  pruneFailed?: string[]
  /** Namespaces or CRDs kept because they hold others' objects (PruneBlocked), named with what they hold. */
  pruneBlocked?: string[]
  /** The pinned version that failed health and was rolled back from, when `version` is the rollback target. */
  rolledBackFrom?: string | undefined
}

/** Ready, still progressing, or failed health: what the objects' health says of the version applied. */
export function healthVerdict(input: HealthInput): Verdict {
  const { report, spec, version, now } = input
  const interval = durationMs(spec.interval)
  const healthy = report.failed.length === 0 && report.waiting.length === 0
  const timedOut = now.getTime() - input.since.getTime() > durationMs(spec.timeout)
  if (healthy && input.rolledBackFrom) {
    const message
      = `${input.rolledBackFrom} failed its health check and was rolled back; running ${version}. `
        + 'Pin another version to move on'
    return ended('False', 'RolledBack', message, message, 'Succeeded', requeue(interval))
  }
  if (healthy) {
    const unpruned = input.pruneFailed?.length ? `; could not prune ${namedFew(input.pruneFailed)}` : ''
    // A blocked prune waits for a person (or for the contents to go): looked at again each interval, said in Ready.
    const blocked = input.pruneBlocked?.length ? `; prune blocked: ${namedFew(input.pruneBlocked)}` : ''
    const next = requeue(unpruned ? HEALTH_POLL_MS : interval)
    const message = `applied ${version}${unpruned}${blocked}`
    return ended('True', 'Succeeded', message, `applied ${version}`, 'Succeeded', next)
  }
  if (report.failed.length > 0 || timedOut) {
    const names = namedFew([...report.failed, ...report.waiting])
    return ended(
      'False',
      'HealthCheckFailed',
      `${version} is unhealthy: ${names}`,
      names,
      'HealthCheckFailed',
      requeue(interval),
    )
  }
  return {
    ready: { status: 'False', reason: 'Progressing', message: `waiting for ${namedFew(report.waiting)}` },
    reconciling: { status: 'True', reason: 'Progressing', message: `rolling out ${version}` },
    history: 'Progressing',
    outcome: requeue(HEALTH_POLL_MS),
  }
}

/**
 * A version whose objects are Ready (`healthy`, the verdict of {@link healthVerdict}), judged by its metric checks:
 * Ready once they all held for their `for`; MetricCheckFailed, naming the check, on a value that breaks a condition
 * or when the timeout passes with none to judge; else still progressing, back when the next check is due.
 */
export function metricVerdict(judgement: MetricJudgement, input: HealthInput, healthy: Verdict): Verdict {
  const { version, spec, now } = input
  const check = `metric ${judgement.decidedBy}`
  if (judgement.outcome === 'passed') {
    const ready = healthy.ready && { ...healthy.ready, message: `${healthy.ready.message}; ${judgement.message}` }
    return { ...healthy, ...(ready ? { ready } : {}), check: `metrics ${judgement.decidedBy}` }
  }
  const timedOut = now.getTime() - input.since.getTime() > durationMs(spec.timeout)
  if (judgement.outcome === 'failed' || timedOut) {
    const message = judgement.outcome === 'failed'
      ? judgement.message
      : `not proven within spec.timeout ${spec.timeout}: ${judgement.message}`
    const next = requeue(durationMs(spec.interval))
    return { ...ended('False', 'MetricCheckFailed', `${version} is unhealthy: ${message}`, message, 'MetricCheckFailed', next), check }
  }
  return {
    ready: { status: 'False', reason: 'Progressing', message: `objects Ready; waiting for ${judgement.message}` },
    reconciling: { status: 'True', reason: 'Progressing', message: `verifying ${version} by its metrics` },
    history: 'Progressing',
    outcome: requeue(judgement.nextMs),
  }
}

/**
 * A pass stopped by `error`. Its kind decides: stalling stops until the spec changes (or, for a
 * range pin, until the next interval, when a newer release may fix it); waiting comes back after
 * its fixed delay; anything else backs off. `kept` says what still runs (`; still running 1.0.0`).
 */
export function failureVerdict(error: unknown, spec: EnvironmentSpec | undefined, kept: string): Verdict {
  const reason = error instanceof BerthError ? error.reason : 'ReconcileFailed'
  const message = messageOf(error)
  const ready = { status: 'False' as const, reason, message: `${message}${kept}` }
  switch (kindOf(error)) {
    case 'stalling': {
      // A moved tag may be put back, an owner may let go: look again at the interval, as for a range.
      // So may a key Secret be fixed (DecryptionFailed): nothing in the spec changes for that.
      const again = spec && (isRange(spec.version) || LOOK_AGAIN.has(reason))
      const next = again ? requeue(durationMs(spec.interval)) : ({ next: 'stop' } as const)
      return { ready, reconciling: { status: 'False', reason, message }, stalled: true, outcome: next }
    }
    case 'waiting': {
      const afterMs = error instanceof WaitingError ? error.retryAfterMs : HEALTH_POLL_MS
      return { ready, reconciling: { status: 'True', reason: 'Waiting', message }, outcome: requeue(afterMs) }
    }
    default:
      return {
        ready,
        reconciling: { status: 'True', reason: 'RetryingAfterFailure', message },
        outcome: backoff(error),
      }
  }
}

function ended(
  status: 'True' | 'False',
  reason: string,
  readyMessage: string,
  reconcilingMessage: string,
  history: string,
  outcome: Outcome,
): Verdict {
  return {
    ready: { status, reason, message: readyMessage },
    reconciling: { status: 'False', reason, message: reconcilingMessage },
    history,
    outcome,
  }
}

export const requeue = (afterMs: number): Outcome => ({ next: 'requeue', afterMs })
const backoff = (error: unknown): Outcome => ({ next: 'backoff', error })
