/**
 * The promotion gate's rules, in one place for the reconciler's gate phase and for `berth promote --from`:
 * - same cluster (`promotion.from`): a digest is proven on an upstream Environment once an application of it there
 *   Succeeded (history), whatever the upstream runs or says at this moment;
 * - anywhere (`promotion.attested`): the upstream's newest signed health attestation of exactly that digest says
 *   healthy.
 * Either way, `soak` asks that it has been healthy upstream for that long.
 */
import type { EnvironmentStatus, HistoryEntry } from '../../api/environment.ts'
import { type Attestation, identityOf, newestFrom } from '../../shared/attestations.ts'
import { formatDuration } from '../../shared/duration.ts'

/** When `digest` last became healthy on the upstream (its newest Succeeded application), if it did. */
export function provenSince(upstream: EnvironmentStatus | undefined, digest: string): Date | undefined {
  const row = (upstream?.history ?? []).findLast((h) => h.digest === digest && h.result === 'Succeeded')
  return row ? new Date(row.finished) : undefined
}

/** The newest application that Succeeded on the upstream: what the gate lets through, and promote --from pins. */
export function newestProven(upstream: EnvironmentStatus | undefined): HistoryEntry | undefined {
  return (upstream?.history ?? []).findLast((h) => h.result === 'Succeeded')
}

/** Through the gate, or held with why and when to look again. */
export type GateDecision = { pass: true } | { pass: false; message: string; retryMs?: number }

/** `soak`: healthy upstream since `since`, for at least `soakMs` by `now`. */
export function soaked(since: Date, soakMs: number, now: Date, where: string): GateDecision {
  const healthyMs = now.getTime() - since.getTime()
  if (healthyMs >= soakMs) return { pass: true }
  const seconds = Math.max(0, Math.floor(healthyMs / 1000)) * 1000
  return {
    pass: false,
    message: `healthy on ${where} for ${formatDuration(seconds)} of ${formatDuration(soakMs)}`,
    retryMs: soakMs - healthyMs,
  }
}

export type Found = { verified: readonly Attestation[]; refused: readonly string[]; where: string }

/**
 * The attested gate for `digest`: the newest attestation from `identity` must say healthy, for `soakMs` by its own
 * readySince. Otherwise why not: none at all, only other identities', none that verifies, failed upstream, not soaked.
 */
export function judgeAttested(found: Found, identity: string, digest: string, soakMs: number, now: Date): GateDecision {
  const word = newestFrom(found.verified, identity)
  if (!word) {
    const others = [...new Set(found.verified.map((a) => identityOf(a.predicate)))]
    if (others.length > 0) return { pass: false, message: `${digest} is attested by ${others.join(', ')}, not by ${identity}` }
    if (found.refused.length > 0) {
      return { pass: false, message: `no attestation of ${digest} under ${found.where} holds: ${found.refused.join('; ')}` }
    }
    return { pass: false, message: `no attestation of ${digest} from ${identity} (${found.where})` }
  }
  const { predicate } = word
  if (predicate.result !== 'healthy') {
    return { pass: false, message: `${predicate.version} failed upstream on ${identity} (attested ${predicate.attestedAt})` }
  }
  return soaked(new Date(predicate.readySince), soakMs, now, identity)
}
