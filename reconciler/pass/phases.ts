/**
 * The phases of a reconcile pass, in order, one function each: resolve the pin, hold it at the
 * promotion gate, choose the target (the pin, or the last healthy version after an automatic
 * rollback), hold it by policy, wait for dependencies (dependsOn), verify, fetch, select, decrypt, apply,
 * prune, and judge health (kstatus or CEL, then metric checks). Each reads what earlier phases left
 * on the {@link Pass}, owns its own condition and events, and may end the pass with a verdict.
 * Adding a phase (verifying a signature, say) is one function and one line in {@link PHASES}.
 */
import { InvalidInputError, WaitingError } from '../../shared/errors.ts'
import { verifyArtifact } from '../../shared/signatures.ts'
import { healthAttestations } from '../../shared/attestations.ts'
import { describeObject, type KubeObject, type Located, objectKey } from '../../shared/manifests.ts'
import { durationMs } from '../../shared/duration.ts'
import {
  type Environment,
  environmentRef,
  GROUP,
  KIND,
  type HistoryEntry,
  PROMOTED_BY,
  RECONCILE_REQUESTED_AT,
} from '../../api/environment.ts'
import { OVERRIDE, PINNED_BY_ENVIRONMENT, RECONCILER_USER } from '../../api/well-known.ts'
import { type Applied, applyObjects, entryOf, type Owner, placeObjects } from '../apply/apply.ts'
import { type Drift, findDrift } from '../apply/drift.ts'
import { releasedTo } from '../apply/ownership.ts'
import { fetchArtifact } from '../source/fetch.ts'
import { BUSY_RETRY_MS, WAIT_MS } from '../source/registry-gate.ts'
import { need, type Pass, type Phase, type Verdict } from './pass.ts'
import { describeEntry, describeFailures, entryKey, prune } from '../apply/prune.ts'
import { resolve, type Resolved, resolveDigest } from '../source/resolve.ts'
import { type GateDecision, judgeAttested, provenSince, soaked } from './gate.ts'
import { awaitingApproval, holdOf } from './policy.ts'
import { lastHealthy, rollbackTarget } from './rollback.ts'
import { selectObjects } from '../source/source.ts'
import { firstAttemptOf, recordHistory, removeCondition, setCondition } from './status.ts'
import { FAILED_HEALTH, healthOf, healthVerdict, metricVerdict, requeue } from './verdict.ts'
import { healthJudge } from '../health/rules.ts'
import { judgeMetrics } from '../health/metrics.ts'
import { instantQuery, prometheusFor } from '../health/prometheus.ts'
import { dependencyWait } from './depends-on.ts'
import { trustedKeys } from '../source/verify.ts'
import { decryptObjects } from '../source/decrypt.ts'

/** How soon a version held at the promotion gate is looked at again. */
export const PROMOTION_RETRY_MS = 10_000

/** Resolve the pin to a version and digest; what was attempted shows in status even when a later phase fails. */
async function resolvePhase(pass: Pass): Promise<undefined> {
  const { spec, source, status, env, ctx } = pass
  const lookup = (): Promise<Resolved> => resolve(source.repository, spec.version, spec.digest, source.access)
  // Environments pinned alike share one lookup for a short window; `berth reconcile` always looks afresh.
  const requested = env.metadata.annotations?.[RECONCILE_REQUESTED_AT]
  const shared = requested === status.lastHandledReconcileAt ? ctx.lookups : undefined
  const key = `${source.reach}|${source.repository}|${spec.version}|${spec.digest ?? ''}`
  // Joining another pass's lookup is bounded like an oras run's turn: a hanging registry holds no second slot.
  const join = {
    ms: WAIT_MS,
    otherwise: () => new WaitingError(
      'RegistryBusy',
      `${source.repository.split('/')[0] ?? ''} is slow to answer another Environment's lookup of the same pin; `
      + `trying again in ${BUSY_RETRY_MS / 1000} s`,
      BUSY_RETRY_MS,
    ),
  }
  const pinned = shared ? await shared.get(key, lookup, undefined, join) : await lookup()
  pass.pinned = pinned
  status.lastAttemptedVersion = pinned.version
  status.lastAttemptedDigest = pinned.digest
  // A version is its bytes: once applied here, the same version with other bytes is a moved tag, refused unless the
  // spec pins the new digest deliberately. History remembers what each version was when it was applied.
  const applied = spec.digest ? undefined : status.history?.findLast((h) => h.version === pinned.version)
  if (applied && applied.digest !== pinned.digest) {
    throw new InvalidInputError(
      'TagMoved',
      `${source.repository}:${pinned.version} now points at ${pinned.digest}, but ${pinned.version} was applied here `
      + `as ${applied.digest}: the tag moved; nothing of it was applied. If the new bytes are meant, pin them `
      + `deliberately: spec.digest: ${pinned.digest}`,
    )
  }
  return undefined
}

/**
 * The gate: a version is applied only once its digest has been healthy upstream (for `soak`) — an Environment of this
 * cluster (`from`), or one anywhere whose signed attestation says so (`attested`).
 */
async function promotionGatePhase(pass: Pass): Promise<undefined> {
  const promotion = pass.spec.promotion
  // Windows alone (policy.ts) name no upstream: no gate.
  if (!promotion?.from && !promotion?.attested) return undefined
  const { version, digest } = need(pass.pinned, 'pinned')
  const soakMs = durationMs(promotion.soak ?? '0s')
  let decision: GateDecision
  if (promotion.attested) {
    const { environment, secretRef } = promotion.attested
    const field = 'spec.promotion.attested.secretRef'
    const { keys } = await trustedKeys(pass.kube, pass.env.metadata.namespace, secretRef.name, field)
    const found = await healthAttestations(pass.source.repository, digest, keys, pass.source.access)
    decision = judgeAttested(found, environment, digest, soakMs, pass.now())
  } else {
    const upstream = promotion.from ?? ''
    const source = await pass.ctx.kube.get<Environment>(environmentRef(pass.env.metadata.namespace, upstream))
    const since = provenSince(source?.status, digest)
    decision = since
      ? soaked(since, soakMs, pass.now(), upstream)
      : { pass: false, message: `${version} (${digest}) has not been Ready on ${upstream}; promote it there first` }
  }
  if (!decision.pass) {
    const retry = Math.min(decision.retryMs ?? PROMOTION_RETRY_MS, durationMs(pass.spec.interval))
    throw new WaitingError('PromotionBlocked', `promotion gate: ${decision.message}`, Math.max(retry, 1000))
  }
  return undefined
}

/** The pin, unless an automatic rollback away from it is in force: then the last healthy version. */
async function targetPhase(pass: Pass): Promise<undefined> {
  const { status, spec, source } = pass
  const pinned = need(pass.pinned, 'pinned')
  const good = rollbackTarget(status, pinned.digest, spec.rollback)
  if (!good) delete status.rolledBackFrom
  pass.target = good ? await resolveDigest(source.repository, good.version, good.digest, source.access) : pinned
  return undefined
}

/**
 * Promotion policy (policy.ts): a new version arriving while frozen or outside the windows is held, and the version
 * running stays the target, so it is still applied, corrected and health-checked. With nothing running yet, the pass
 * just waits.
 */
async function policyPhase(pass: Pass): Promise<undefined> {
  const { status, source } = pass
  const target = need(pass.target, 'target')
  if (target.digest === status.lastAppliedDigest) return undefined
  const hold = holdOf(pass.env, pass.spec, pass.now()) ?? (await awaitingApproval(pass, target))
  if (!hold) return undefined
  // berth promote --override, allowed by the apiserver only to the berth-override role: past the hold, on record.
  const override = overrideOf(pass.env)
  if (override?.version === target.version) {
    const message = `${target.version} lands by override of ${override.by}, past ${hold.reason}: ${override.reason}`
    await pass.event('Warning', 'Overridden', message)
    return undefined
  }
  const { lastAppliedVersion: version, lastAppliedDigest: digest } = status
  if (!version || !digest) throw new WaitingError(hold.reason, hold.message, hold.retryMs)
  pass.held = hold
  pass.target = await resolveDigest(source.repository, version, digest, source.access)
  return undefined
}

/**
 * `spec.dependsOn`: a new version lands only while every dependency is Ready on its current version (the platform's
 * CRDs before the apps that use them). What runs already is still corrected and health-checked meanwhile. A cycle
 * can never be satisfied: refused whenever it is there, whatever version is pinned.
 */
async function dependsOnPhase(pass: Pass): Promise<undefined> {
  const names = pass.spec.dependsOn?.map((d) => d.name) ?? []
  if (names.length === 0) return undefined
  const target = need(pass.target, 'target')
  const wait = await dependencyWait(pass, names, target.digest !== pass.status.lastAppliedDigest)
  if (wait) throw wait
  return undefined
}

/**
 * `spec.verify`: the target must be signed by a trusted key over exactly its digest before
 * anything of it is fetched or applied. A digest verified against the same keys is not checked again.
 */
async function verifyPhase(pass: Pass): Promise<undefined> {
  const { spec, status, source } = pass
  if (!spec.verify) {
    delete status.verified
    return undefined
  }
  const target = need(pass.target, 'target')
  const { keys, fingerprint } = await trustedKeys(pass.kube, pass.env.metadata.namespace, spec.verify.secretRef.name)
  if (status.verified?.digest === target.digest && status.verified.keys === fingerprint) return undefined
  const verified = await verifyArtifact(source.repository, target.digest, keys, source.access)
  status.verified = { ...verified, keys: fingerprint }
  await pass.event(
    'Normal',
    'Verified',
    `${target.version} (${target.digest}) is signed by ${verified.key} (${verified.keyId})`,
  )
  return undefined
}

/** Download (or take from the cache) the target's layer, verified by digest, and read it defensively. */
async function fetchPhase(pass: Pass): Promise<undefined> {
  const { source, ctx } = pass
  const target = need(pass.target, 'target')
  const fetch = (): Promise<Map<string, Buffer>> =>
    fetchArtifact(source.repository, target, source.access, ctx.cacheDir)
  // A digest names the same bytes forever: read once, kept for every Environment pinned to it.
  pass.files = ctx.artifacts ? await ctx.artifacts.files.get(target.digest, fetch) : await fetch()
  return undefined
}

/** This Environment's folder of the artifact, parsed and checked (once per digest and folder). */
async function selectPhase(pass: Pass): Promise<undefined> {
  const path = pass.spec.path ?? pass.env.metadata.name
  const files = need(pass.files, 'files')
  const select = (): Located[] => selectObjects(files, path)
  const { digest, version } = need(pass.target, 'target')
  const selected = pass.ctx.artifacts ? await pass.ctx.artifacts.objects.get(`${digest}|${path}`, select) : select()
  pass.objects = environmentsPinnedBy(pass, selected, version)
  return undefined
}

/**
 * `spec.decryption`: the version's SOPS-encrypted Secrets, decrypted in memory just before the dry run and the apply.
 * The parsed objects stay encrypted in the controller's cache; only this pass holds the plaintext.
 */
async function decryptPhase(pass: Pass): Promise<undefined> {
  const objects = need(pass.objects, 'objects')
  const files = need(pass.files, 'files')
  const { namespace } = pass.env.metadata
  pass.objects = [...(await decryptObjects(pass.kube, namespace, pass.spec.decryption, objects, files))]
  return undefined
}

/**
 * Developers publish, SREs promote — against the artifact itself too. An artifact that holds the
 * Environment being reconciled would set its own pin: refused (SelfReference), nothing applied.
 * Other Environments it holds (app of apps) are applied, each stamped with who really set its
 * pin — this Environment and version — so their history says so.
 */
function environmentsPinnedBy(pass: Pass, objects: readonly Located[], version: string): Located[] {
  const { name, namespace } = pass.env.metadata
  const by = `${namespace}/${name} ${version}`
  return objects.map((located) => {
    const { object } = located
    if (object.kind !== KIND || object.apiVersion.split('/')[0] !== GROUP) return located
    const lands = object.metadata.namespace ?? pass.spec.targetNamespace ?? namespace
    if (object.metadata.name === name && lands === namespace) {
      throw new InvalidInputError(
        'SelfReference',
        `${located.source}: the artifact holds this Environment (${namespace}/${name}) itself, which would set its own `
        + 'pin: refused. An artifact may hold other Environments (app of apps), never its own',
      )
    }
    const annotations = {
      ...(object.metadata.annotations as Record<string, string> | undefined),
      [PROMOTED_BY]: by,
      [PINNED_BY_ENVIRONMENT]: by,
    }
    return { ...located, object: { ...object, metadata: { ...object.metadata, annotations } } }
  })
}

/**
 * Apply the target. On a periodic pass (same digest, same spec) look for drift first, only in
 * the objects the watch cannot vouch for: without drift nothing is written and what the check
 * read serves prune and health; with drift, `warn` ends the pass with the Drifted condition and
 * `correct` re-applies just what drifted. Owns `Drifted`.
 */
async function applyPhase(pass: Pass): Promise<Verdict | undefined> {
  const { env, spec, status } = pass
  const target = need(pass.target, 'target')
  const objects = need(pass.objects, 'objects')
  const owner = { ...pass.owner, targetNamespace: spec.targetNamespace }
  const periodic = status.lastAppliedDigest === target.digest && status.observedGeneration === env.metadata.generation
  if (periodic) return await checkDrift(pass, target, objects, owner)
  pass.applying = true
  const applied = await applyObjects(pass.kube, objects, owner, target.version)
  pass.applied = applied
  await claimsSaid(pass, applied)
  confirm(pass, applied.live, applied.live)
  status.lastAppliedVersion = target.version
  status.lastAppliedDigest = target.digest
  // Applying made the cluster match the artifact: whatever drifted is corrected.
  removeCondition(status, 'Drifted')
  log(pass, 'applied', target)
  const message = `applied ${target.version} (${target.digest}): ${applied.inventory.length} objects`
  await pass.event('Normal', 'Applied', message)
  await warnings(pass, applied.warnings)
  return undefined
}

/** Events for objects taken over from, or let go to, another Environment (berth.dev/take-over-from). */
async function claimsSaid(pass: Pass, applied: Applied): Promise<void> {
  const { taken = [], released = [] } = applied.claims ?? {}
  if (taken.length > 0) {
    const what = taken.map((t) => `${describeObject(t.object)} from ${t.from}`).join(', ')
    await pass.event('Normal', 'TookOver', `took over ${what}, as berth.dev/take-over-from asks`)
  }
  if (released.length > 0) {
    const what = released.map((r) => `${describeObject(r.object)} to ${r.to}`).join(', ')
    await pass.event('Normal', 'Released', `let go of ${what}, which took it over: no longer applied or pruned here`)
  }
}

/** The periodic half of {@link applyPhase}: check what may have drifted, then warn or re-apply only that. */
async function checkDrift(
  pass: Pass,
  target: Resolved,
  objects: readonly Located[],
  owner: Owner,
): Promise<Verdict | undefined> {
  const all = await placeObjects(pass.kube, objects, owner)
  const key = `${pass.owner.namespace}/${pass.owner.name}`
  const { check, live: watched } = pass.ctx.owned?.suspects(key, pass.kube, all) ?? { check: all, live: [] }
  const found = await findDrift(pass.kube, check)
  // What another Environment took over from this one (berth.dev/take-over-from) is not drift: it is let go.
  const liveOf = new Map(found.live.map((o) => [objectKey(o), o]))
  const gone = new Set<string>()
  for (const d of found.drift) {
    if (await releasedTo(pass.kube, liveOf.get(objectKey(d.of)), owner)) gone.add(objectKey(d.of))
  }
  const drift = found.drift.filter((d) => !gone.has(objectKey(d.of)))
  const read = found.live.filter((o) => !gone.has(objectKey(o)))
  const placed = all.filter((o) => !gone.has(objectKey(o)))
  const drifted = new Set(drift.map((d) => objectKey(d.of)))
  const unchanged = [...watched, ...read.filter((o) => !drifted.has(objectKey(o)))]
  if (drift.length === 0) {
    pass.inSync = true
    pass.applied = { inventory: placed.map(entryOf), live: unchanged, warnings: [] }
    confirm(pass, read, placed)
    if (check.length > 0) log(pass, 'in sync', target)
    return undefined
  }
  if (pass.spec.driftPolicy === 'warn') {
    confirm(pass, read, placed)
    pass.ctx.owned?.unconfirm(key, drift.map((d) => d.of))
    return await driftWarned(pass, target, describeDrift(drift))
  }
  await pass.event('Normal', 'DriftCorrected', `re-applied ${target.version}: ${describeDrift(drift)}`)
  pass.applying = true
  const again = objects.filter((_, i) => drifted.has(objectKey(all[i] as KubeObject)))
  const applied = await applyObjects(pass.kube, again, owner, target.version)
  await claimsSaid(pass, applied)
  const released = new Set((applied.claims?.released ?? []).map((r) => objectKey(r.object)))
  const inventory = placed.filter((o) => !released.has(objectKey(o))).map(entryOf)
  pass.applied = { inventory, live: [...unchanged, ...applied.live], warnings: applied.warnings }
  confirm(pass, [...read, ...applied.live], placed)
  removeCondition(pass.status, 'Drifted')
  log(pass, 'drift corrected', target)
  await warnings(pass, applied.warnings)
  return undefined
}

/** Tell the watch of owned objects what this pass left: `live` as read or applied, of all `wanted`. */
function confirm(pass: Pass, live: readonly KubeObject[], wanted: readonly KubeObject[]): void {
  const leaving = pass.ctx.owned?.confirm(`${pass.owner.namespace}/${pass.owner.name}`, pass.kube, live, wanted)
  if (leaving) pass.leaving = new Map([...(pass.leaving ?? []), ...leaving])
}

async function warnings(pass: Pass, found: readonly string[]): Promise<void> {
  if (found.length > 0) await pass.event('Warning', 'APIWarnings', found.join('; '))
}

async function driftWarned(pass: Pass, target: Resolved, described: string): Promise<Verdict> {
  const message = `differs from ${target.version}: ${described}`
  const observedGeneration = pass.env.metadata.generation ?? 0
  const drifted = { type: 'Drifted', status: 'True' as const, reason: 'DriftDetected', message, observedGeneration }
  setCondition(pass.status, drifted, pass.now())
  await pass.event('Warning', 'DriftDetected', message)
  return {
    reconciling: { status: 'False', reason: 'DriftDetected', message: 'driftPolicy warn: nothing changed' },
    outcome: requeue(durationMs(pass.spec.interval)),
  }
}

const describeDrift = (drift: readonly Drift[]): string =>
  drift.map((d) => `${d.object} (${d.fields.slice(0, 5).join(', ')})`).join('; ')

/**
 * Delete what the previous application had and this one does not (when `spec.prune`). A delete
 * that fails keeps its object in the inventory, so the next pass tries again.
 */
async function prunePhase(pass: Pass): Promise<undefined> {
  const { spec, status } = pass
  const applied = need(pass.applied, 'applied')
  const pruned = spec.prune
    ? await prune(pass.kube, status.inventory ?? [], applied.inventory, pass.owner, pass.leaving)
    : { deleted: [], failed: [] }
  pass.pruned = pruned
  const keys = new Set(applied.inventory.map(entryKey))
  const kept = [...pruned.failed, ...(pruned.blocked ?? [])]
  const unpruned = kept.map((f) => f.entry).filter((e) => !keys.has(entryKey(e)))
  status.inventory = [...applied.inventory, ...unpruned]
  if (pruned.deleted.length > 0) {
    await pass.event('Normal', 'Pruned', `deleted ${pruned.deleted.map(describeEntry).join(', ')}`)
  }
  if (pruned.failed.length > 0) await pass.event('Warning', 'PruneFailed', describeFailures(pruned.failed))
  if (pruned.blocked?.length) await pass.event('Warning', 'PruneBlocked', describeFailures(pruned.blocked))
  if (pruned.forced?.length) await pass.event('Warning', 'PruneForced', describeFailures(pruned.forced))
  return undefined
}

/**
 * Judge the health of what runs now (the apply responses carry status: no second read), from the first attempt of
 * this digest on: by kstatus, or the CEL rules of spec.health.exprs for the kinds they name; then, for a new version
 * whose objects are all Ready, by its metric checks. A version that fails health rolls back, here and only here, when
 * `spec.rollback: onFailure` and a healthy version came before.
 */
async function healthPhase(pass: Pass): Promise<Verdict> {
  const { status, spec } = pass
  const target = need(pass.target, 'target')
  const pinned = need(pass.pinned, 'pinned')
  const since = new Date(firstAttemptOf(status, target.digest) ?? pass.started.toISOString())
  const rolledBackFrom = target.digest === pinned.digest || pass.held ? undefined : pinned.version
  const input = {
    report: healthOf(need(pass.applied, 'applied').live, healthJudge(spec.health?.exprs)),
    spec,
    version: target.version,
    since,
    now: pass.now(),
    pruneFailed: (pass.pruned?.failed ?? []).map((f) => describeEntry(f.entry)),
    pruneBlocked: (pass.pruned?.blocked ?? []).map((f) => `${describeEntry(f.entry)} ${f.error}`),
    rolledBackFrom,
  }
  let verdict = healthVerdict(input)
  // The version that runs while a new one is held, or the one rolled back to, proved itself before.
  const proving = verdict.ready?.reason === 'Succeeded' && !rolledBackFrom && !pass.held
  if (proving) verdict = (await metricGate(pass, (judgement) => metricVerdict(judgement, input, verdict))) ?? verdict
  if (!FAILED_HEALTH.has(verdict.history ?? '')) return verdict
  return (await rollBack(pass, verdict)) ?? verdict
}

/**
 * spec.health.metrics for the target, once its objects are Ready: evaluated when due, recorded in status.metrics
 * (per digest, so a new version starts afresh), and judged. A digest whose checks all passed is not asked again.
 */
async function metricGate(
  pass: Pass,
  verdictOf: (judgement: Awaited<ReturnType<typeof judgeMetrics>>) => Verdict,
): Promise<Verdict | undefined> {
  const { status, spec } = pass
  const checks = spec.health?.metrics ?? []
  const target = need(pass.target, 'target')
  if (checks.length === 0) {
    delete status.metrics
    return undefined
  }
  const generation = pass.env.metadata.generation ?? 0
  const record = status.metrics?.digest === target.digest ? status.metrics : undefined
  // A failure stands for its version until the spec changes (a corrected query or threshold): then judged afresh.
  const failedBefore = record?.checks.some((c) => c.result === 'Failed') ?? false
  const before = record && !(failedBefore && record.generation !== generation) ? record.checks : undefined
  if (before && before.length === checks.length && before.every((c) => c.result === 'Passed')) return undefined
  const namespace = pass.env.metadata.namespace
  const signal = anySignal(pass.ctx.signal, pass.superseded)
  // Checks that name the same Secret (or none) ask the same Prometheus: its Secret is read once per pass.
  const prometheus = new Map<string, ReturnType<typeof prometheusFor>>()
  const accessFor = (secret: string | undefined): ReturnType<typeof prometheusFor> => {
    const key = secret ?? ''
    const found = prometheus.get(key) ?? prometheusFor(pass.kube, namespace, secret, pass.ctx.prometheusAddress)
    prometheus.set(key, found)
    return found
  }
  const judgement = await judgeMetrics({
    checks,
    before,
    now: pass.now(),
    read: async (check) => {
      const access = await accessFor(check.secretRef?.name)
      return 'kind' in access ? access : await instantQuery(access, check.query, signal ? { signal } : {})
    },
  })
  status.metrics = { digest: target.digest, generation, checks: judgement.checks }
  const newly = !before?.some((c) => c.result === 'Failed')
  if (judgement.outcome === 'failed' && newly) await pass.event('Warning', 'MetricCheckFailed', judgement.message)
  return verdictOf(judgement)
}

const anySignal = (...signals: Array<AbortSignal | undefined>): AbortSignal | undefined => {
  const given = signals.filter((s): s is AbortSignal => s !== undefined)
  return given.length > 1 ? AbortSignal.any(given) : given[0]
}

/** Re-apply the last healthy version in this same pass; undefined when rollback is off or has nothing to go to. */
async function rollBack(pass: Pass, failed: Verdict): Promise<Verdict | undefined> {
  const { status, source } = pass
  const target = need(pass.target, 'target')
  if (pass.spec.rollback !== 'onFailure' || status.rolledBackFrom) return undefined
  const good = lastHealthy(status.history, { digest: target.digest })
  if (!good) return undefined
  recordAttempt(pass, target, failed.history ?? 'HealthCheckFailed', failed.check)
  const why = failed.reconciling.message
  const message
    = `${target.version} is unhealthy (${why}); berth rolls back on its own (spec.rollback: onFailure) to `
      + `${good.version} (${good.digest})`
  await pass.event('Warning', 'RollingBack', message)
  status.rolledBackFrom = target.digest
  pass.target = await resolveDigest(source.repository, good.version, good.digest, source.access)
  Object.assign(pass, {
    files: undefined,
    objects: undefined,
    applied: undefined,
    pruned: undefined,
    inSync: undefined,
  })
  return await runPhases(pass, APPLICATION)
}

/** Who the history names for what berth applied on its own: the rollback target is not the last promoter's choice. */
export const AUTOMATIC_ROLLBACK = 'berth (automatic rollback)'

/** Record the outcome of applying `target` in the history, with who chose it. */
export function recordAttempt(pass: Pass, target: Resolved, result: string, check?: string): void {
  const row: HistoryEntry = {
    version: target.version,
    digest: target.digest,
    started: firstAttemptOf(pass.status, target.digest) ?? pass.started.toISOString(),
    finished: pass.now().toISOString(),
    result,
    ...(check ? { check } : {}),
  }
  const rolledBack = pass.pinned !== undefined && target.digest !== pass.pinned.digest && !pass.held
  const override = overrideOf(pass.env)
  const promoter = promoterOf(pass.env)
  const overridden = override?.version === target.version ? `${promoter ?? '?'} (override: ${override.reason})` : promoter
  const by = rolledBack ? AUTOMATIC_ROLLBACK : overridden
  recordHistory(pass.status, by === undefined ? row : { ...row, by })
}

/**
 * Who set the pin: the name the apiserver stamped (berth.dev/promoted-by); for a pin an app of apps set — stamped with
 * a berth reconciler's name, or as the reconciler wrote it where no admission policy stamps — the parent and version.
 */
function promoterOf(env: Environment): string | undefined {
  const annotations = env.metadata.annotations ?? {}
  const by = annotations[PROMOTED_BY]
  const parent = annotations[PINNED_BY_ENVIRONMENT]
  return parent && (by === parent || RECONCILER_USER.test(by ?? '')) ? parent : by
}

/** The override on `env` (`berth promote --override`): which version, why, and by whom (the stamped promoter). */
function overrideOf(env: Environment): { version: string; reason: string; by: string } | undefined {
  const annotations = env.metadata.annotations ?? {}
  const version = annotations[OVERRIDE.version]
  if (!version) return undefined
  return { version, reason: annotations[OVERRIDE.reason] ?? '', by: annotations[PROMOTED_BY] ?? 'someone' }
}

function log(pass: Pass, msg: string, target: Resolved): void {
  const { owner } = pass
  const environment = `${owner.namespace}/${owner.name}`
  const objects = pass.applied?.inventory.length
  pass.ctx.log?.({ msg, environment, version: target.version, digest: target.digest, objects })
}

/** Applying one version: what runs again for the rollback target. */
const APPLICATION: readonly Phase[] = [
  verifyPhase,
  fetchPhase,
  selectPhase,
  decryptPhase,
  applyPhase,
  prunePhase,
  healthPhase,
]

/** Every phase of a pass, in order. */
export const PHASES: readonly Phase[] = [
  resolvePhase,
  promotionGatePhase,
  targetPhase,
  policyPhase,
  dependsOnPhase,
  ...APPLICATION,
]

/** Run `phases` until one ends the pass. */
export async function runPhases(pass: Pass, phases: readonly Phase[]): Promise<Verdict> {
  for (const phase of phases) {
    const verdict = await phase(pass)
    if (verdict) return verdict
  }
  throw new Error('reconcile phase order: no phase ended the pass')
}
