/**
 * `spec.attest`: once the digest running here has been Ready for `after`, sign a health attestation for it and push it
 * beside the artifact, so an Environment in any cluster can be gated on it (`promotion.attested`) without access to
 * this one. A digest attested healthy that later fails here (its health check fails, or it is rolled back from) gets a
 * `failed` attestation: downstream takes the newest as this Environment's word. Runs after the pass has its verdict and
 * never fails it: a push that fails is a Warning Event (`AttestationFailed`) and a retry with backoff.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AttestedEntry, EnvironmentStatus } from '../../api/environment.ts'
import { attestHealth, type HealthPredicate } from '../../shared/attestations.ts'
import { readPrivateKey } from '../../shared/cosign.ts'
import { durationMs } from '../../shared/duration.ts'
import { InvalidInputError, messageOf } from '../../shared/errors.ts'
import { BERTH } from '../../shared/package-info.ts'
import type { Pass, Verdict } from './pass.ts'
import { readyCondition } from './status.ts'

/** How many attestations status keeps. */
const KEPT = 10
const FIRST_RETRY_MS = 5_000
const MAX_RETRY_MS = 5 * 60_000
/** Consecutive failed pushes per Environment and digest: the backoff of the next try. */
const failures = new Map<string, number>()

type Due = { version: string; digest: string; result: HealthPredicate['result']; readySince: string }

/** Attest what is due after this pass's `verdict`; the verdict, with a requeue for what is due later or a retry. */
export async function attestAfter(pass: Pass, verdict: Verdict): Promise<Verdict> {
  const attest = pass.spec.attest
  if (!attest) return verdict
  const due = dueNow(pass, verdict)
  if (!due) return verdict
  if ('waitMs' in due) return sooner(verdict, due.waitMs)
  const key = `${pass.env.metadata.uid ?? pass.env.metadata.name}|${due.digest}`
  try {
    const entry = await push(pass, attest.secretRef.name, due)
    failures.delete(key)
    pass.status.attested = [...(pass.status.attested ?? []), entry].slice(-KEPT)
    await pass.event('Normal', 'Attested', `attested ${due.version} (${due.digest}) ${due.result}: ${entry.reference}`)
    return verdict
  } catch (error: unknown) {
    const tries = (failures.get(key) ?? 0) + 1
    failures.set(key, tries)
    const retryMs = Math.min(FIRST_RETRY_MS * 2 ** (tries - 1), MAX_RETRY_MS)
    const message = `could not attest ${due.version} (${due.digest}) ${due.result}: ${messageOf(error)}; trying again `
      + `in ${Math.round(retryMs / 1000)} s (the Environment itself is not held)`
    await pass.event('Warning', 'AttestationFailed', message)
    return sooner(verdict, retryMs)
  }
}

/** What to attest now, or how long until it is due; undefined when nothing is. */
function dueNow(pass: Pass, verdict: Verdict): Due | { waitMs: number } | undefined {
  const { status, env } = pass
  const target = pass.target
  if (!target) return undefined
  // A digest this Environment attested healthy that failed here in this pass: rolled back from, or failing health.
  const rolledBack = status.rolledBackFrom !== undefined && status.rolledBackFrom !== env.status?.rolledBackFrom
  const failing = rolledBack ? status.rolledBackFrom : verdict.history === 'HealthCheckFailed' ? target.digest : undefined
  if (failing && lastWord(status, failing)?.result === 'healthy') {
    const version = status.history?.findLast((h) => h.digest === failing)?.version ?? pass.pinned?.version ?? ''
    return { version, digest: failing, result: 'failed', readySince: lastWord(status, failing)?.readySince ?? '' }
  }
  if (verdict.ready?.status !== 'True' || status.lastAppliedDigest !== target.digest) return undefined
  if (lastWord(status, target.digest)?.result === 'healthy') return undefined
  const readySince = readySinceOf(pass, verdict, target.digest)
  const waitMs = readySince.getTime() + durationMs(pass.spec.attest?.after ?? '0s') - pass.now().getTime()
  if (waitMs > 0) return { waitMs }
  return { version: target.version, digest: target.digest, result: 'healthy', readySince: readySince.toISOString() }
}

/**
 * Since when `digest` has been Ready here without a break: the later of its newest Succeeded application and the
 * moment Ready last turned True; now, when it became Ready in this very pass.
 */
function readySinceOf(pass: Pass, verdict: Verdict, digest: string): Date {
  const before = readyCondition(pass.env.status)
  const row = pass.status.history?.findLast((h) => h.digest === digest && h.result === 'Succeeded')
  if (verdict.history === 'Succeeded' || !row || before?.status !== 'True') return pass.now()
  return new Date(Math.max(Date.parse(row.finished), Date.parse(before.lastTransitionTime)))
}

/** This Environment's newest attestation of `digest`. */
function lastWord(status: EnvironmentStatus, digest: string): AttestedEntry | undefined {
  return status.attested?.findLast((a) => a.digest === digest)
}

type AttestSecret = { data?: Record<string, string> }

/** Sign and push `due` with the key and push credentials of Secret `name`. */
async function push(pass: Pass, name: string, due: Due): Promise<AttestedEntry> {
  const { namespace } = pass.env.metadata
  const cluster = pass.ctx.clusterName
  if (!cluster) {
    throw new InvalidInputError(
      'AttestationFailed',
      'the reconciler has no --cluster-name, and an attestation must name its cluster: set it (berth install --cluster-name)',
    )
  }
  const secret = await pass.kube.get<AttestSecret>({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace } })
  const data = secret?.data ?? {}
  const text = (field: string): string | undefined =>
    data[field] === undefined ? undefined : Buffer.from(data[field], 'base64').toString('utf8')
  const pem = text('cosign.key')
  const config = data['.dockerconfigjson']
  if (!pem || !config) {
    throw new InvalidInputError(
      'AttestationFailed',
      `spec.attest.secretRef: Secret ${namespace}/${name} must hold cosign.key (with cosign.password) and `
      + '.dockerconfigjson (push credentials for the repository)',
    )
  }
  const key = await readPrivateKey(pem, text('cosign.password') ?? '')
  const at = pass.now().toISOString()
  const predicate: HealthPredicate = {
    cluster,
    namespace,
    environment: pass.env.metadata.name,
    version: due.version,
    digest: due.digest,
    result: due.result,
    readySince: due.readySince,
    attestedAt: at,
    berthVersion: BERTH.version,
  }
  const dir = await mkdtemp(join(tmpdir(), 'berth-attest-'))
  try {
    const registryConfig = join(dir, 'config.json')
    await writeFile(registryConfig, Buffer.from(config, 'base64'), { mode: 0o600 })
    const access = { ...pass.source.access, registryConfig }
    const reference = await attestHealth(pass.source.repository, due.digest, predicate, key, access)
    return { version: due.version, digest: due.digest, result: due.result, readySince: due.readySince, at, reference }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** `verdict`, coming back within `ms` at the latest. */
function sooner(verdict: Verdict, ms: number): Verdict {
  const { outcome } = verdict
  if (outcome.next === 'requeue' && outcome.afterMs <= ms) return verdict
  if (outcome.next === 'backoff') return verdict
  return { ...verdict, outcome: { next: 'requeue', afterMs: Math.max(ms, 1000) } }
}
