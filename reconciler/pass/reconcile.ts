/**
 * One reconcile pass of one Environment, read top to bottom as Flux's reconcilers read:
 * get → deleted? (finalize) → finalizer → valid spec? → suspended? → the phases (phases.ts) →
 * attest what ran healthy (attest.ts) → summarize → one status write → hand what changed to the
 * notifier (notify.ts, never awaited).
 * Whatever stops the pass, its error's kind decides what comes next (verdict.ts): a spec or
 * artifact the user must fix stalls, a gate or a version not yet published waits a fixed delay,
 * anything else backs off; the version applied before keeps running.
 */
import { z } from 'zod'
import { ANNOTATIONS } from '../../shared/artifact.ts'
import { InvalidInputError, kindOf, messageOf, RemoteError } from '../../shared/errors.ts'
import { type Kube, KubeApiError } from '../../shared/kube.ts'
import { durationMs, formatDuration } from '../../shared/duration.ts'
import { formatIssues } from '../../shared/validation.ts'
import {
  type Environment,
  environmentRef,
  type EnvironmentSpec,
  type EnvironmentStatus,
  FINALIZER,
  inShard,
  RECONCILE_REQUESTED_AT,
  specSchema,
  SUSPENDED,
} from '../../api/environment.ts'
import type { Owner } from '../apply/apply.ts'
import { takeOverList } from '../apply/ownership.ts'
import { TAKE_OVER_FROM } from '../../api/well-known.ts'
import { recordEvent } from './events.ts'
import { actingAs } from './identity.ts'
import type { ConditionText, Outcome, Pass, ReconcileContext, Verdict } from './pass.ts'
import { PHASES, recordAttempt, runPhases } from './phases.ts'
import { attestAfter } from './attest.ts'
import { heldVerdict } from './policy.ts'
import { type Noted, notifications } from '../notify/notify.ts'
import { describeFailures, prune } from '../apply/prune.ts'
import type { Resolved } from '../source/resolve.ts'
import { openSource, type Source } from '../source/source.ts'
import { readyCondition, removeCondition, sameStatus, setCondition, statusPatch } from './status.ts'
import { FAILED_HEALTH, failureVerdict } from './verdict.ts'

export type { Outcome, ReconcileContext } from './pass.ts'

const STOP: Outcome = { next: 'stop' }

/**
 * One pass over the Environment `key`. `known` is the Environment as the controller's watch
 * delivered it, when nothing happened since the pass was scheduled: a periodic pass then reads
 * nothing from the apiserver. `superseded` is aborted when the pin changes meanwhile: a health wait ends at once.
 */
export async function reconcileEnvironment(
  ctx: ReconcileContext,
  key: { namespace: string; name: string },
  known?: Environment,
  superseded?: AbortSignal,
): Promise<Outcome> {
  const env = known ?? (await ctx.kube.get<Environment>(environmentRef(key.namespace, key.name)))
  // Gone, or relabelled to another shard since it was queued: not this reconciler's any more.
  if (!env || !inShard(env.metadata.labels, ctx.shard)) return STOP
  if (env.metadata.deletionTimestamp) return await finalize(ctx, env)
  const now = clock(ctx)
  const status: EnvironmentStatus = structuredClone(env.status ?? {})
  const noted: Noted[] = []
  const event: Pass['event'] = (type, reason, message) => {
    noted.push({ reason, message, ...aboutTarget(pass?.target) })
    return recordEvent(ctx.kube, env, type, reason, message, ctx.log)
  }
  const owner: Owner = {
    name: env.metadata.name,
    namespace: env.metadata.namespace,
    takeOverFrom: takeOverList(env.metadata.annotations?.[TAKE_OVER_FROM]),
  }
  const started = now()
  let pass: Pass | undefined
  let spec: EnvironmentSpec | undefined
  let verdict: Verdict
  let failedPass = false
  let raised = ''
  try {
    await ensureFinalizer(ctx.kube, env)
    const floored = floorInterval(parseSpec(env.spec), ctx.minIntervalMs)
    spec = floored.spec
    raised = floored.note
    const held = await suspendGate(env, spec, status, event)
    if (held) {
      verdict = held
    } else {
      const kube = await identityOf(ctx, env, spec)
      const source = gated(ctx, await openSource(kube, env.metadata.namespace, spec, signalOf(ctx)))
      pass = { ctx, env, spec, status, owner, now, started, source, event, kube, superseded }
      try {
        verdict = await attestAfter(pass, await runPhases(pass, PHASES))
        if (pass.held) {
          verdict = heldVerdict(verdict, pass.held, pass.target?.version ?? '')
          // History says the new version is waiting, who pinned it, and why.
          if (pass.pinned) recordAttempt(pass, pass.pinned, pass.held.reason)
          // A hold lasts: tell people when it starts, not at every pass.
          if (readyCondition(env.status)?.reason !== pass.held.reason) await event('Warning', pass.held.reason, pass.held.message)
        }
      } finally {
        await source.close()
      }
    }
  } catch (error: unknown) {
    failedPass = kindOf(error) !== 'waiting'
    verdict = await failed(ctx, env, status, spec, pass, error, event)
  }
  // The user asked for another interval, and should know: Ready says so.
  if (verdict.ready && raised) verdict.ready = { ...verdict.ready, message: `${verdict.ready.message}${raised}` }
  summarize(env, status, verdict, now(), pass)
  await writeStatus(ctx, env, status)
  notify(ctx, { env, spec, status, noted, failed: failedPass || FAILED_HEALTH.has(verdict.history ?? ''), pass })
  return verdict.outcome
}

/**
 * Hand what the pass has to tell to the receivers of `spec.notify`: after the status is written,
 * and never awaited, so a slow or broken receiver never holds a pass. Their Secrets are read as
 * the Environment's own identity, as everything else it names.
 */
function notify(
  ctx: ReconcileContext,
  facts: {
    env: Environment
    spec: EnvironmentSpec | undefined
    status: EnvironmentStatus
    noted: readonly Noted[]
    failed: boolean
    pass: Pass | undefined
  },
): void {
  const { env, status, pass } = facts
  // A spec refused for another field still names its receivers: its failure is worth telling.
  const spec = facts.spec ?? NOTIFY_PART.safeParse(env.spec).data
  if (!spec?.notify || !ctx.notifier) return
  const told = notifications({
    env,
    before: env.status,
    after: status,
    noted: facts.noted,
    failed: facts.failed,
    revision: revisionOf(pass?.target),
    now: clock(ctx)(),
    cluster: ctx.clusterName,
  })
  if (told.length === 0) return
  const acting = pass?.kube
  ctx.notifier.send(env, spec.notify, () => (acting ? Promise.resolve(acting) : identityOf(ctx, env, spec)), told)
}

/** The version an event is about: the pass's target when it has one. */
function aboutTarget(target: Resolved | undefined): Omit<Noted, 'reason' | 'message'> {
  if (!target) return {}
  const revision = revisionOf(target)
  return { version: target.version, digest: target.digest, ...(revision ? { revision } : {}) }
}

function revisionOf(target: Resolved | undefined): string | undefined {
  const annotations = target?.manifest.annotations as Record<string, string> | undefined
  return annotations?.[ANNOTATIONS.revision]
}

/** Turn a verdict into status: conditions, the history row, and what every pass records. */
function summarize(env: Environment, status: EnvironmentStatus, verdict: Verdict, now: Date, pass?: Pass): void {
  const observedGeneration = env.metadata.generation ?? 0
  const set = (type: string, text: ConditionText): void => {
    setCondition(status, { type, ...text, observedGeneration }, now)
  }
  if (verdict.ready) set('Ready', verdict.ready)
  // kstatus: Reconciling while work is under way, Stalled when it cannot go on; never both, and
  // neither once the pass is done.
  if (verdict.stalled) set('Stalled', { ...verdict.reconciling, status: 'True' })
  else removeCondition(status, 'Stalled')
  if (!verdict.stalled && verdict.reconciling.status === 'True') set('Reconciling', verdict.reconciling)
  else removeCondition(status, 'Reconciling')
  if (verdict.suspended) set('Suspended', { status: 'True', reason: 'Suspended', message: verdict.suspended })
  else removeCondition(status, 'Suspended')
  if (verdict.history && pass?.target) recordAttempt(pass, pass.target, verdict.history, verdict.check)
  status.observedGeneration = observedGeneration
  const requested = env.metadata.annotations?.[RECONCILE_REQUESTED_AT]
  if (requested) status.lastHandledReconcileAt = requested
  if (status.lastAppliedDigest) status.shortDigest = status.lastAppliedDigest.slice('sha256:'.length, 'sha256:'.length + 12)
}

async function writeStatus(ctx: ReconcileContext, env: Environment, status: EnvironmentStatus): Promise<void> {
  const { namespace, name } = env.metadata
  ctx.onStatus?.({ namespace, name }, status)
  // A pass that changed nothing writes nothing: the steady state costs no status write per interval.
  if (sameStatus(env.status, status)) return
  const patch = statusPatch(env.status, status)
  await ctx.kube.patchStatus(environmentRef(namespace, name), patch).catch((error: unknown) => {
    // The object may be gone after its finalizer was removed; nothing left to report on.
    if (!(error instanceof KubeApiError && error.code === 404)) throw error
  })
}

/** The verdict of a pass an error stopped, with the event that tells people. */
async function failed(
  ctx: ReconcileContext,
  env: Environment,
  status: EnvironmentStatus,
  spec: EnvironmentSpec | undefined,
  pass: Pass | undefined,
  error: unknown,
  event: Pass['event'],
): Promise<Verdict> {
  const verdict = failureVerdict(error, spec, keptNote(status, pass))
  const reason = verdict.ready?.reason ?? 'ReconcileFailed'
  const before = readyCondition(status)?.reason
  // A wait repeats every few seconds: tell people when it starts, not each time.
  if (kindOf(error) !== 'waiting' || before !== reason) await event('Warning', reason, messageOf(error))
  if (verdict.outcome.next === 'backoff') {
    const environment = `${env.metadata.namespace}/${env.metadata.name}`
    ctx.log?.({ msg: 'reconcile failed', environment, reason, error: messageOf(error) })
  }
  return verdict
}

// What the failure left running: nothing of the target was applied when apply never started.
function keptNote(status: EnvironmentStatus, pass: Pass | undefined): string {
  const running = status.lastAppliedVersion ? `; still running ${status.lastAppliedVersion}` : ''
  const target = pass?.target
  if (target && !pass.applying && target.digest !== status.lastAppliedDigest) {
    return `; nothing of ${target.version} was applied${running}`
  }
  return running
}

/** The client that acts on this Environment's objects (see identity.ts). */
async function identityOf(
  ctx: ReconcileContext,
  env: Environment,
  spec: Pick<EnvironmentSpec, 'serviceAccountName'>,
): Promise<Kube> {
  const { name, namespace } = env.metadata
  return await actingAs(ctx, namespace, spec.serviceAccountName, {
    needs: 'this Environment',
    retry: `run berth reconcile ${name} -n ${namespace}`,
  })
}

/** Add berth's finalizer to `object` (an Environment, an EnvironmentSet) unless it has it. */
export async function ensureFinalizer(
  kube: Kube,
  object: { apiVersion: string; kind: string; metadata: { name: string; namespace: string; finalizers?: string[] } },
): Promise<void> {
  const finalizers = object.metadata.finalizers ?? []
  if (finalizers.includes(FINALIZER)) return
  const { apiVersion, kind, metadata: { name, namespace } } = object
  const ref = { apiVersion, kind, metadata: { name, namespace } }
  await kube.mergePatch(ref, { metadata: { finalizers: [...finalizers, FINALIZER] } })
}

/** spec.interval, raised to the reconciler's floor when it is shorter, and what Ready says of that. */
function floorInterval(spec: EnvironmentSpec, minMs: number | undefined): { spec: EnvironmentSpec; note: string } {
  if (minMs === undefined || durationMs(spec.interval) >= minMs) return { spec, note: '' }
  const interval = formatDuration(minMs)
  return {
    spec: { ...spec, interval },
    note: `; spec.interval ${spec.interval} is raised to the reconciler's --min-interval ${interval}`,
  }
}

/** One registry's trouble must not hold every slot: the pass's oras runs take turns per host (registry-gate.ts). */
function gated(ctx: ReconcileContext, source: Source): Source {
  const gate = ctx.registries?.gateFor(source.repository)
  return gate ? { ...source, access: { ...source.access, gate } } : source
}

function parseSpec(spec: unknown): EnvironmentSpec {
  const parsed = specSchema.safeParse(spec)
  if (!parsed.success) throw new InvalidInputError('InvalidSpec', `spec.${formatIssues(parsed.error)}`)
  return parsed.data
}

/** Suspended: nothing changes until resumed. Says who and why, and tells people when it starts and ends. */
async function suspendGate(
  env: Environment,
  spec: EnvironmentSpec,
  status: EnvironmentStatus,
  event: Pass['event'],
): Promise<Verdict | undefined> {
  const wasSuspended = status.conditions?.some((c) => c.type === 'Suspended' && c.status === 'True') ?? false
  if (!spec.suspend) {
    if (wasSuspended) await event('Normal', 'Resumed', 'resumed: changes are made again')
    return undefined
  }
  const a = env.metadata.annotations ?? {}
  const why = a[SUSPENDED.reason]
    ? ` by ${a[SUSPENDED.by] ?? 'unknown'} at ${a[SUSPENDED.at] ?? '?'}: ${a[SUSPENDED.reason]}`
    : ''
  if (!wasSuspended) await event('Normal', 'Suspended', `suspended${why}`)
  return {
    reconciling: { status: 'False', reason: 'Suspended', message: `suspended${why}; no change is made until resumed` },
    suspended: `suspended${why}; no change is made until resumed`,
    outcome: STOP,
  }
}

/**
 * Deleting an Environment: remove what it applied (unless orphaned), then let it go. What
 * could not be removed stays in the inventory, is said in Ready, and is tried again.
 */
async function finalize(ctx: ReconcileContext, env: Environment): Promise<Outcome> {
  const finalizers = env.metadata.finalizers ?? []
  if (!finalizers.includes(FINALIZER)) return STOP
  const parsed = specSchema.safeParse(env.spec)
  const orphan = parsed.success && (parsed.data.deletionPolicy === 'orphan' || !parsed.data.prune)
  const owner = { name: env.metadata.name, namespace: env.metadata.namespace }
  // As the identity that applied them: never with the reconciler's own rights when the Environment has one.
  // Orphaning deletes nothing, so it needs no identity (its ServiceAccount may already be gone).
  const prunedAs = async (): Promise<Kube> => (parsed.success ? await identityOf(ctx, env, parsed.data) : ctx.kube)
  const inventory = env.status?.inventory ?? []
  const { failed: left } = orphan ? { failed: [] } : await prune(await prunedAs(), inventory, [], owner)
  if (left.length > 0) {
    const status: EnvironmentStatus = { ...structuredClone(env.status ?? {}), inventory: left.map((f) => f.entry) }
    const message = `could not remove: ${describeFailures(left)}; retrying`
    const error = new RemoteError('DeletionFailed', message)
    const verdict: Verdict = {
      ready: { status: 'False', reason: 'DeletionFailed', message },
      reconciling: { status: 'True', reason: 'DeletionFailed', message },
      outcome: { next: 'backoff', error },
    }
    await recordEvent(ctx.kube, env, 'Warning', 'DeletionFailed', message, ctx.log)
    summarize(env, status, verdict, clock(ctx)())
    await writeStatus(ctx, env, status)
    return verdict.outcome
  }
  const ref = environmentRef(env.metadata.namespace, env.metadata.name)
  const kept = finalizers.filter((f) => f !== FINALIZER)
  await ctx.kube.mergePatch(ref, { metadata: { finalizers: kept, resourceVersion: env.metadata.resourceVersion } })
  return STOP
}

/** What notifying needs of a spec, read on its own when the whole spec is refused. */
const NOTIFY_PART = z.object({
  notify: specSchema.shape.notify,
  serviceAccountName: specSchema.shape.serviceAccountName,
})

function clock(ctx: ReconcileContext): () => Date {
  return ctx.now ?? ((): Date => new Date())
}

function signalOf(ctx: ReconcileContext): { signal?: AbortSignal } {
  return ctx.signal ? { signal: ctx.signal } : {}
}
