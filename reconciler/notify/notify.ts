/**
 * What a pass has to tell people: the transitions of one Environment, each said once.
 *
 * A pass notes the events it records (Applied, RollingBack, DriftCorrected, Suspended, Resumed)
 * with the version they were about; after the status is written, {@link notifications} turns
 * those notes and the change of the Ready condition into notifications. Ready and Failed come
 * from the condition, not from the pass: a version that stays Ready, or a failure that stays the
 * same failure, is not said again on every interval.
 */
import type { NotifyEvent } from '../../api/notify-events.ts'
import { HELD_RESULTS } from '../pass/status.ts'
import { PROMOTED_BY } from '../../api/well-known.ts'
import type { Condition, Environment, EnvironmentStatus } from '../../api/environment.ts'
import { readyCondition } from '../pass/status.ts'

/** What a receiver is told; the webhook payload is exactly this (README: Notifications). */
export type Notification = {
  event: NotifyEvent
  environment: string
  namespace: string
  /** The version this is about: the one applied, Ready, failing, or rolled back to. */
  version?: string
  digest?: string
  /** The config commit the artifact was made from (`<ref>@sha1:<commit>`), when it says. */
  revision?: string
  /** The version applied before this one. */
  previousVersion?: string
  result: 'success' | 'failure' | 'info'
  reason: string
  message: string
  /** Who pinned the version (`berth.dev/promoted-by`), when known. */
  promotedBy?: string
  time: string
  /** The reconciler's `--cluster-name`. */
  cluster?: string
}

/** An event the pass recorded, with the version it was about at that moment. */
export type Noted = { reason: string; message: string; version?: string; digest?: string; revision?: string }

export type PassFacts = {
  env: Environment
  /** Status as the pass read it, and as it wrote it. */
  before: EnvironmentStatus | undefined
  after: EnvironmentStatus
  noted: readonly Noted[]
  /** The pass ended with a failure (not a wait, not a rollout in progress). */
  failed: boolean
  /** Revision of the version the pass ended on, when its artifact was read. */
  revision?: string | undefined
  now: Date
  cluster?: string | undefined
}

/** The notifications of one pass, in the order things happened. */
export function notifications(facts: PassFacts): Notification[] {
  const { env, before, after, noted, now } = facts
  const base = {
    environment: env.metadata.name,
    namespace: env.metadata.namespace,
    time: now.toISOString(),
    ...optional('promotedBy', env.metadata.annotations?.[PROMOTED_BY]),
    ...optional('cluster', facts.cluster),
  }
  const out: Notification[] = []
  let previousVersion = before?.lastAppliedVersion
  let rollingBack: Noted | undefined
  for (const note of noted) {
    const about = {
      ...optional('version', note.version),
      ...optional('digest', note.digest),
      ...optional('revision', note.revision),
    }
    switch (note.reason) {
      case 'Applied':
        if (rollingBack) {
          // Re-applying the last healthy version is the rollback itself: one notification, not two.
          out.push({
            ...base,
            ...about,
            ...optional('previousVersion', rollingBack.version),
            event: 'RolledBack',
            result: 'failure',
            reason: 'RolledBack',
            message: rollingBack.message,
          })
          rollingBack = undefined
        } else {
          out.push({
            ...base,
            ...about,
            ...optional('previousVersion', previousVersion),
            event: 'Applied',
            result: 'success',
            reason: 'Applied',
            message: note.message,
          })
        }
        previousVersion = note.version
        break
      case 'RollingBack':
        rollingBack = note
        break
      case 'DriftCorrected':
      case 'Suspended':
      case 'Resumed':
      case 'Overridden':
      case 'Frozen':
      case 'OutsideWindow':
      case 'AwaitingApproval':
        out.push({
          ...base,
          ...about,
          ...optional('version', note.version ?? after.lastAppliedVersion),
          ...optional('digest', note.digest ?? after.lastAppliedDigest),
          // A new version held by policy (policy.ts): one event for the three reasons, the reason says which.
          event: HELD_RESULTS.has(note.reason) ? 'Held' : (note.reason as NotifyEvent),
          result: note.reason === 'DriftCorrected' ? 'success' : 'info',
          reason: note.reason,
          message: note.message,
        })
        break
      default:
        break
    }
  }
  const ready = readyTransition(facts)
  if (ready) {
    const applied = ready.event === 'Ready'
    out.push({
      ...base,
      ...optional('version', applied ? after.lastAppliedVersion : after.lastAttemptedVersion),
      ...optional('digest', applied ? after.lastAppliedDigest : after.lastAttemptedDigest),
      ...optional('revision', facts.revision),
      ...optional('previousVersion', applied ? previousVersionOf(before, after) : after.lastAppliedVersion),
      event: ready.event,
      result: applied ? 'success' : 'failure',
      reason: ready.condition.reason,
      message: ready.condition.message,
    })
  }
  return out
}

/**
 * Ready: the condition turned True, or stayed True over a new digest. Failed: the pass failed
 * and the condition says something it did not say before (another reason, or another version).
 */
function readyTransition(facts: PassFacts): { event: 'Ready' | 'Failed'; condition: Condition } | undefined {
  const { before, after } = facts
  const was = readyCondition(before)
  const now = readyCondition(after)
  if (!now) return undefined
  if (now.status === 'True') {
    const same = was?.status === 'True' && before?.lastAppliedDigest === after.lastAppliedDigest
    return same ? undefined : { event: 'Ready', condition: now }
  }
  if (!facts.failed || now.status !== 'False') return undefined
  const same
    = was?.status === 'False' && was.reason === now.reason && before?.lastAttemptedDigest === after.lastAttemptedDigest
  return same ? undefined : { event: 'Failed', condition: now }
}

/** The version that ran before the one now Ready: from history, the newest other digest that succeeded. */
function previousVersionOf(before: EnvironmentStatus | undefined, after: EnvironmentStatus): string | undefined {
  if (before?.lastAppliedDigest && before.lastAppliedDigest !== after.lastAppliedDigest)
    return before.lastAppliedVersion
  const history = after.history ?? []
  return history.findLast((h) => h.digest !== after.lastAppliedDigest && h.result === 'Succeeded')?.version
}

function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined || value === '' ? {} : ({ [key]: value } as Record<K, string>)
}
