/**
 * Rollback decisions, pure: which earlier version to go back to. The reconciler's automatic
 * rollback (`spec.rollback: onFailure`) and `berth rollback` both choose here, by digest:
 * the last application that was healthy and is not the one being left.
 */
import semver from 'semver'
import type { Environment, EnvironmentStatus, HistoryEntry } from '../../api/environment.ts'

export type Healthy = Pick<HistoryEntry, 'version' | 'digest'>

/** The last healthy application that is neither `except.digest` nor `except.version`. */
export function lastHealthy(
  history: readonly HistoryEntry[] | undefined,
  except: { digest?: string | undefined; version?: string | undefined },
): Healthy | undefined {
  return (history ?? []).findLast(
    (h) => h.result === 'Succeeded' && h.digest !== except.digest && h.version !== except.version,
  )
}

/**
 * Where an automatic rollback stands for this pass: after one, the pin stays visible but the
 * last healthy digest is what runs, with no retry loop against the version that failed. A
 * new pin (or rollback turned off) ends it.
 */
export function rollbackTarget(
  status: EnvironmentStatus,
  pinnedDigest: string,
  rollback: 'onFailure' | undefined,
): Healthy | undefined {
  if (rollback !== 'onFailure' || status.rolledBackFrom !== pinnedDigest) return undefined
  return lastHealthy(status.history, { digest: pinnedDigest })
}

/**
 * What `berth rollback` pins: the version `to` when it was ever Ready here, else the last
 * Ready one other than what is pinned now (by version, since the pin may never have resolved).
 */
export function chooseRollback(env: Environment, to?: string): Healthy | undefined {
  const history = env.status?.history ?? []
  if (to !== undefined) return history.findLast((h) => h.result === 'Succeeded' && h.version === to)
  const pinned = (env.spec as { version?: string } | undefined)?.version
  // The digest the pin last resolved to is being left too, unless the pin never resolved (a range nothing
  // satisfies): then what was attempted last belongs to the pin before, and is where to go back to.
  const attempted = env.status?.lastAttemptedVersion
  const resolvedPin = pinned && attempted && semver.satisfies(attempted, pinned, { includePrerelease: true })
  return lastHealthy(history, { version: pinned, digest: resolvedPin ? env.status?.lastAttemptedDigest : undefined })
}
