/**
 * Promotion policy: when a *new* version (a pin change, a range advancing, a newly attested digest) may land. A freeze
 * (`berth freeze`) or the windows of `spec.promotion.windows` hold it; while held, the version running keeps running —
 * applied, drift-corrected, health-checked, rolled back as ever — and Ready says what holds the new one and until when.
 */
import { FROZEN } from '../../api/well-known.ts'
import type { Environment, EnvironmentSpec } from '../../api/environment.ts'
import { windowVerdict } from '../../api/windows.ts'
import { durationMs } from '../../shared/duration.ts'
import type { Hold, Verdict } from './pass.ts'

/** What holds a new version of `env` at `now`, if anything: a freeze first, then the windows. */
export function holdOf(env: Environment, spec: EnvironmentSpec, now: Date): Hold | undefined {
  const interval = durationMs(spec.interval)
  const frozen = frozenNow(env, now)
  if (frozen) {
    const until = frozen.until ? Date.parse(frozen.until) - now.getTime() : interval
    const message = `frozen by ${frozen.by || 'someone'} at ${frozen.at || '?'}: ${frozen.reason}`
      + `${frozen.until ? ` (until ${frozen.until})` : ''}; \`berth unfreeze\` lets new versions land`
    return { reason: 'Frozen', message, retryMs: Math.min(until, interval) }
  }
  const windows = spec.promotion?.windows ?? []
  if (windows.length === 0) return undefined
  const verdict = windowVerdict(windows, now)
  if (verdict.open) return undefined
  const opens = verdict.opensAt ? `the next window opens ${verdict.opensAt.toISOString()}` : 'no window opens within a year'
  const waitMs = verdict.opensAt ? verdict.opensAt.getTime() - now.getTime() : interval
  return { reason: 'OutsideWindow', message: `a new version waits: ${verdict.why}; ${opens}`, retryMs: Math.max(waitMs, 1000) }
}

export type Frozen = { reason: string; by: string; at: string; until: string }

/** The freeze on `env`, when one is in force at `now` (an `until` in the past has ended it). */
export function frozenNow(env: Environment, now: Date): Frozen | undefined {
  const a = env.metadata.annotations ?? {}
  const reason = a[FROZEN.reason]
  if (reason === undefined) return undefined
  const until = a[FROZEN.until] ?? ''
  if (until && Date.parse(until) <= now.getTime()) return undefined
  return { reason, by: a[FROZEN.by] ?? '', at: a[FROZEN.at] ?? '', until }
}

/**
 * The verdict of a pass that kept the running version because a new one is held: Ready says what holds it, and the
 * pass comes back when the hold may end. The running version's own trouble (unhealthy, drifted) is said as it is.
 */
export function heldVerdict(verdict: Verdict, hold: Hold, running: string): Verdict {
  if (verdict.ready?.status !== 'True') return verdict
  const after = verdict.outcome.next === 'requeue' ? Math.min(verdict.outcome.afterMs, hold.retryMs) : hold.retryMs
  return {
    ready: { status: 'False', reason: hold.reason, message: `${hold.message}; still running ${running}` },
    reconciling: { status: 'True', reason: 'Waiting', message: hold.message },
    outcome: { next: 'requeue', afterMs: Math.max(after, 1000) },
  }
}
