/** What `berth promote` pins: an explicit version, or what the upstream has proven by the gate's rule. */
import type { Environment } from '../../api/environment.ts'
import { BerthError } from '../../shared/errors.ts'
import { newestProven } from '../pass/gate.ts'
import { readyOf } from '../pass/status.ts'

export type Pin = { version: string; digest: string | null }

/**
 * `--from UPSTREAM`: the newest version whose application Succeeded on the upstream — exactly what
 * the in-cluster gate (`spec.promotion.from`) lets through, so the CLI and the gate never disagree.
 * A version the upstream is still rolling out, or failed, is not proven yet.
 */
export function pinFromUpstream(upstream: Environment): Pin & { note?: string } {
  const proven = newestProven(upstream.status)
  const { namespace, name } = upstream.metadata
  if (!proven) {
    const ready = readyOf(upstream)
    throw new BerthError(
      'SourceNotReady',
      `no version has Succeeded on ${namespace}/${name} yet (${ready.message || 'no verdict'}); `
      + 'promote from an Environment that has run a version healthily',
    )
  }
  const running = upstream.status?.lastAppliedDigest
  const note = running && running !== proven.digest
    ? `${name} now runs ${upstream.status?.lastAppliedVersion ?? '?'}, not proven yet; pinning ${proven.version}, `
    + `the newest version that Succeeded there`
    : undefined
  return { version: proven.version, digest: proven.digest, ...(note ? { note } : {}) }
}
