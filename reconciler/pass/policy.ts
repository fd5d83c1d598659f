/**
 * Promotion policy: when a *new* version (a pin change, a range advancing, a newly attested digest) may land. A freeze
 * (`berth freeze`) or the windows of `spec.promotion.windows` hold it; while held, the version running keeps running —
 * applied, drift-corrected, health-checked, rolled back as ever — and Ready says what holds the new one and until when.
 */
import { APPROVAL_API_VERSION, APPROVAL_KIND, type Approval } from '../../api/approval.ts'
import { FROZEN, PROMOTED_BY } from '../../api/well-known.ts'
import type { Resolved } from '../source/resolve.ts'
import type { Environment, EnvironmentSpec } from '../../api/environment.ts'
import { windowVerdict } from '../../api/windows.ts'
import { durationMs } from '../../shared/duration.ts'
import type { Hold, Pass, Verdict } from './pass.ts'

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

export type Frozen = { reason: string; by: string; at: string; until?: string }

/** The freeze on `env`, when one is in force at `now` (an `until` in the past has ended it). */
export function frozenNow(env: Environment, now: Date): Frozen | undefined {
  const a = env.metadata.annotations ?? {}
  const reason = a[FROZEN.reason]
  if (reason === undefined) return undefined
  const until = a[FROZEN.until] ?? ''
  if (until && Date.parse(until) <= now.getTime()) return undefined
  return { reason, by: a[FROZEN.by] ?? '', at: a[FROZEN.at] ?? '', ...(until ? { until } : {}) }
}

/** How soon a version awaiting approval is looked at again (approvals are not watched). */
const APPROVAL_RETRY_MS = 10_000

/**
 * `spec.promotion.approvals`: the new version (exactly this version and digest) must have been approved by `required`
 * distinct people other than the one who pinned it. Both names come from the apiserver's admission policies
 * (install/policies.ts): the pinner stamped in `berth.dev/promoted-by`, the approver admitted only as themselves.
 */
export async function awaitingApproval(pass: Pass, target: Resolved): Promise<Hold | undefined> {
  const required = pass.spec.promotion?.approvals?.required
  if (!required) return undefined
  const { namespace, name } = pass.env.metadata
  const by = pass.env.metadata.annotations?.[PROMOTED_BY] ?? ''
  const approvals = await pass.ctx.kube.list<Approval>(APPROVAL_API_VERSION, APPROVAL_KIND, { namespace })
  const approvers = [
    ...new Set(
      approvals
        .filter((a) => a.spec.environment === name && a.spec.version === target.version)
        .filter((a) => a.spec.digest === target.digest && a.spec.approver !== by)
        .map((a) => a.spec.approver),
    ),
  ].sort()
  if (approvers.length >= required) return undefined
  const so = approvers.length > 0 ? ` (${approvers.join(', ')})` : ''
  const message = `${target.version} (${target.digest}) pinned by ${by || 'someone unknown'} awaits approval: `
    + `${approvers.length} of ${required}${so}; someone else runs \`berth approve ${name} --version ${target.version}\``
  return { reason: 'AwaitingApproval', message, retryMs: APPROVAL_RETRY_MS }
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
