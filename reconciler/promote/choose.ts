/** What `berth promote` pins: an explicit version, or what the upstream has proven by the gate's rule. */
import type { Environment } from '../../api/environment.ts'
import { BerthError } from '../../shared/errors.ts'
import { newestProven } from '../pass/gate.ts'
import { readyOf } from '../pass/status.ts'

export type Pin = { version: string; digest: string | null }

/**
 * `--from UPSTREAM`: the newest version whose application Succeeded on the upstream — exactly what
 * the in-cluster gate (`spec.promotion.from`) lets through, so the CLI and the gate never disagree.
 * A version the upstream is still rolling out, or failed, is not proven. When what is proven is
 * what `downstream` is pinned to already, there is nothing to promote: refused, saying why the
 * upstream's newer attempt does not count.
 */
export function pinFromUpstream(upstream: Environment, downstream: Environment): Pin & { note?: string } {
  const proven = newestProven(upstream.status)
  const { namespace, name } = upstream.metadata
  const ready = readyOf(upstream)
  if (!proven) {
    throw new BerthError(
      'SourceNotReady',
      `no version has Succeeded on ${namespace}/${name} yet (${ready.message || 'no verdict'}); `
      + 'promote from an Environment that has run a version healthily',
    )
  }
  const attempted = upstream.status?.lastAttemptedDigest
  const unproven = attempted && attempted !== proven.digest
    ? `${name}'s ${upstream.status?.lastAttemptedVersion ?? '?'} has not Succeeded there (${ready.message || ready.reason})`
    : undefined
  const pinned = downstream.spec as { version?: string; digest?: string } | undefined
  const current = pinned?.digest ?? downstream.status?.lastAppliedDigest
  if (pinned?.version === proven.version && current === proven.digest) {
    throw new BerthError(
      'NothingToPromote',
      `${downstream.metadata.name} is already pinned to ${proven.version}, the newest version that Succeeded on `
      + `${name}${unproven ? `; ${unproven}` : ''}; nothing changed`,
    )
  }
  const note = unproven ? `${unproven}; pinning ${proven.version}, the newest version that Succeeded there` : undefined
  return { version: proven.version, digest: proven.digest, ...(note ? { note } : {}) }
}
