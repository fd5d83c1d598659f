/**
 * One pass of an EnvironmentSet, read top to bottom: get → deleted? (remove what it made, then let go) → finalizer →
 * valid spec and template? → list the registry's tags → plan (previews.ts) → for each preview to keep: may its
 * identity write the target namespace? its Namespace, its Environment → remove what is no longer wanted (the
 * Environment first: its finalizer prunes what it applied; the Namespace once that is done) → one status write.
 *
 * Everything the set makes is in its own namespace (Environments) or labelled as its own (Namespaces); it acts as its
 * ServiceAccount for Namespaces and for the write check, and its Environments act as that ServiceAccount too, so a
 * set reaches no further than the ServiceAccount may.
 */
import { InvalidInputError, messageOf } from '../../shared/errors.ts'
import { type Kube, KubeApiError } from '../../shared/kube.ts'
import { listTags } from '../../shared/oras.ts'
import { durationMs } from '../../shared/duration.ts'
import { formatIssues } from '../../shared/validation.ts'
import { API_VERSION, type Environment, environmentRef, FINALIZER, KIND } from '../../api/environment.ts'
import {
  type EnvironmentSet,
  type Preview,
  PREVIEW_LABEL,
  previewEnvironmentName,
  previewSpec,
  SET_API_VERSION,
  SET_KIND,
  SET_LABEL,
  SET_STATUS_FIELDS,
  setRef,
  type SetSpec,
  setSpecSchema,
  type SetStatus,
  templateProblem,
  fillNumber,
} from '../../api/environment-set.ts'
import { recordEvent } from '../pass/events.ts'
import type { Outcome, ReconcileContext } from '../pass/pass.ts'
import { readyCondition, sameStatus, setCondition, statusPatch } from '../pass/status.ts'
import { ensureFinalizer } from '../pass/reconcile.ts'
import { actingAs } from '../pass/identity.ts'
import { openSource } from '../source/source.ts'
import { planPreviews, type Wanted } from './previews.ts'

/** How soon a set looks again while a preview is being removed or is not Ready yet. */
const BUSY_MS = 5_000
const STOP: Outcome = { next: 'stop' }

type Namespace = { apiVersion: 'v1'; kind: 'Namespace'; metadata: { name: string; labels?: Record<string, string> } }
const namespaceRef = (name: string): Namespace => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })

/** One pass over the EnvironmentSet `key`. */
export async function reconcileSet(ctx: ReconcileContext, key: { namespace: string; name: string }): Promise<Outcome> {
  const set = await ctx.kube.get<EnvironmentSet>(setRef(key.namespace, key.name))
  if (!set) return STOP
  const now = ctx.now?.() ?? new Date()
  const event = (type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> =>
    recordEvent(ctx.kube, set, type, reason, message, ctx.log)
  const parsed = setSpecSchema.safeParse(set.spec)
  // Removing what it made acts as the set's ServiceAccount too: without it, deletion waits (ServiceAccountNotFound).
  if (set.metadata.deletionTimestamp)
    return await finalize(ctx, set, parsed.success ? await actingAsSet(ctx, set, parsed.data) : ctx.kube)
  await ensureFinalizer(ctx.kube, set)
  const status: SetStatus = structuredClone(set.status ?? {})
  const generation = set.metadata.generation ?? 0
  const ready = (state: 'True' | 'False', reason: string, message: string): void => {
    setCondition(status, { type: 'Ready', status: state, reason, message, observedGeneration: generation }, now)
  }
  const problem = parsed.success ? templateProblem(parsed.data) : formatIssues(parsed.error)
  if (!parsed.success || problem !== undefined) {
    const message = `spec.${problem ?? ''}`
    if (readyCondition(status)?.reason !== 'InvalidSpec') await event('Warning', 'InvalidSpec', message)
    ready('False', 'InvalidSpec', message)
    await writeStatus(ctx, set, { ...status, observedGeneration: generation })
    return STOP
  }
  const spec = parsed.data
  let identity: Kube
  try {
    identity = await actingAsSet(ctx, set, spec)
  } catch (error: unknown) {
    if (!(error instanceof InvalidInputError && error.reason === 'ServiceAccountNotFound')) throw error
    if (readyCondition(status)?.reason !== error.reason) await event('Warning', error.reason, error.message)
    ready('False', error.reason, error.message)
    await writeStatus(ctx, set, { ...status, observedGeneration: generation })
    return { next: 'backoff', error }
  }
  let tags: string[]
  const source = await openSource(identity, set.metadata.namespace, spec, ctx.signal ? { signal: ctx.signal } : {})
  try {
    tags = await listTags(source.repository, source.access)
  } catch (error: unknown) {
    ready('False', 'RegistryUnreachable', `listing the tags of ${source.repository}: ${messageOf(error)}`)
    await writeStatus(ctx, set, { ...status, observedGeneration: generation })
    return { next: 'backoff', error }
  } finally {
    await source.close()
  }
  const plan = planPreviews(tags, spec, status, now)
  const made = await ctx.kube.list<Environment>(API_VERSION, KIND, {
    namespace: set.metadata.namespace,
    labelSelector: `${SET_LABEL}=${set.metadata.name}`,
  })
  const previews: Preview[] = []
  const forbidden: string[] = []
  for (const wanted of plan.keep) {
    const kept = await keepPreview(ctx, set, spec, identity, wanted, made, event)
    if ('forbidden' in kept) forbidden.push(kept.forbidden)
    else previews.push(kept.preview)
  }
  const keptNames = new Set(previews.map((p) => p.environment))
  const removing = await removeUnwanted(ctx, set, identity, made, keptNames, status, event)
  for (const gone of plan.expired) {
    if (status.previews?.some((p) => p.number === gone.number && p.version === gone.version)) {
      await event('Normal', 'Expired', `pull request ${gone.number}: ${gone.version} had no new push for ${spec.ttl ?? ''}; removed`)
    }
  }
  status.previews = previews
  if (removing.length > 0) status.removing = removing
  else delete status.removing
  status.count = previews.length
  status.ready = previews.filter((p) => p.ready === 'True').length
  const stillExpired = (status.expired ?? []).filter((e) => !plan.expired.some((x) => x.number === e.number))
  status.expired = [...stillExpired, ...plan.expired].slice(-50)
  if (status.expired.length === 0) delete status.expired
  status.observedGeneration = generation
  if (forbidden.length > 0) {
    ready('False', 'Forbidden', forbidden.join('; '))
  } else if (plan.refused.length > 0) {
    const numbers = plan.refused.map((r) => r.number).join(', ')
    const message = `pull request ${numbers}: more previews than maxPreviews ${spec.maxPreviews}; the oldest keep running, `
      + 'these wait until one goes'
    if (readyCondition(set.status)?.reason !== 'TooManyPreviews') await event('Warning', 'TooManyPreviews', message)
    ready('False', 'TooManyPreviews', message)
  } else {
    ready('True', 'Succeeded', `${previews.length} previews, ${status.ready} Ready`)
  }
  await writeStatus(ctx, set, status)
  const busy = removing.length > 0 || previews.some((p) => p.ready !== 'True')
  const next = Math.min(durationMs(spec.interval), plan.nextExpiryMs ?? Infinity, busy ? BUSY_MS : Infinity)
  return { next: 'requeue', afterMs: Math.max(next, 1000) }
}

/** The set's identity (see identity.ts): its previews, Namespaces and the write check act as it. */
async function actingAsSet(ctx: ReconcileContext, set: EnvironmentSet, spec: SetSpec): Promise<Kube> {
  return await actingAs(ctx, set.metadata.namespace, spec.serviceAccountName, {
    needs: 'this EnvironmentSet',
    retry: 'berth retries on its own',
  })
}

/**
 * Keep pull request `wanted.number`'s preview: its Namespace (namespaceTemplate) and its Environment, pinned to the
 * newest push. A target namespace the set's identity may not write is refused (Forbidden) before anything is made.
 */
async function keepPreview(
  ctx: ReconcileContext,
  set: EnvironmentSet,
  spec: SetSpec,
  identity: Kube,
  wanted: Wanted,
  made: readonly Environment[],
  event: (type: 'Normal' | 'Warning', reason: string, message: string) => Promise<void>,
): Promise<{ preview: Preview } | { forbidden: string }> {
  const { number, version } = wanted
  const name = previewEnvironmentName(set.metadata.name, number)
  const envSpec = previewSpec(spec, number, version)
  const target = typeof envSpec.targetNamespace === 'string' ? envSpec.targetNamespace : undefined
  if (target && !(await mayWrite(identity, target))) {
    const who = spec.serviceAccountName ? `ServiceAccount ${set.metadata.namespace}/${spec.serviceAccountName}` : 'berth'
    const message = `pull request ${number}: ${who} may not write namespace ${target} (template.targetNamespace); `
      + 'nothing of its preview was made'
    if (!made.some((e) => e.metadata.name === name)) await event('Warning', 'Forbidden', message)
    return { forbidden: message }
  }
  if (target && spec.namespaceTemplate) {
    const labels = { ...fillNumber(spec.namespaceTemplate.labels ?? {}, number), ...ownLabels(set, number, true) }
    const annotations = fillNumber(spec.namespaceTemplate.annotations ?? {}, number)
    try {
      await identity.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: target, labels, annotations } })
    } catch (error: unknown) {
      if (error instanceof KubeApiError && error.code === 403) return { forbidden: `pull request ${number}: ${error.message}` }
      throw error
    }
  }
  const before = made.find((e) => e.metadata.name === name)
  const env = {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: {
      name,
      namespace: set.metadata.namespace,
      labels: ownLabels(set, number, false),
      ownerReferences: [ownerOf(set)],
    },
    spec: envSpec,
  }
  await ctx.kube.apply(env)
  const was = (before?.spec as { version?: string } | undefined)?.version
  if (!before) await event('Normal', 'Created', `pull request ${number}: Environment ${name} runs ${version}`)
  else if (was !== version) await event('Normal', 'Updated', `pull request ${number}: Environment ${name} moves ${was ?? '?'} → ${version}`)
  const readyNow = readyCondition(before?.status)
  const current = before && was === version ? (readyNow?.status ?? 'Unknown') : 'Unknown'
  return {
    preview: {
      number,
      version,
      environment: name,
      ...(target ? { namespace: target } : {}),
      ready: current,
      ...(spec.url ? { url: fillNumber(spec.url, number) } : {}),
      since: wanted.since,
      pushed: wanted.pushed,
    },
  }
}

/**
 * Whether `identity` may write in `namespace`: asked of the apiserver (a SelfSubjectAccessReview as that identity) for
 * ConfigMaps, the least any preview writes. The Environment checks every object of its own again when it applies.
 */
async function mayWrite(identity: Kube, namespace: string): Promise<boolean> {
  const review = await identity.create({
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectAccessReview',
    metadata: {},
    spec: { resourceAttributes: { namespace, verb: 'create', resource: 'configmaps' } },
  }) as { status?: { allowed?: boolean } }
  return review.status?.allowed === true
}

type Removing = NonNullable<SetStatus['removing']>[number]

/**
 * Remove the previews of pull requests no longer wanted: the Environment first (its finalizer prunes what it applied),
 * then, once it is gone, the Namespace the set made for it. Returns what is still being removed (kept in status, so a
 * Namespace is never forgotten between the two).
 */
async function removeUnwanted(
  ctx: ReconcileContext,
  set: EnvironmentSet,
  identity: Kube,
  made: readonly Environment[],
  keep: ReadonlySet<string>,
  status: SetStatus,
  event: (type: 'Normal' | 'Warning', reason: string, message: string) => Promise<void>,
): Promise<Removing[]> {
  const left = [
    ...(status.removing ?? []),
    ...(status.previews ?? []).map((p) => ({ number: p.number, environment: p.environment, namespace: p.namespace })),
  ].filter((r, i, all) => !keep.has(r.environment) && all.findIndex((x) => x.environment === r.environment) === i)
  for (const env of made) {
    if (keep.has(env.metadata.name) || left.some((r) => r.environment === env.metadata.name)) continue
    left.push({ number: Number(env.metadata.labels?.[PREVIEW_LABEL] ?? 0), environment: env.metadata.name })
  }
  const still: Removing[] = []
  for (const removing of left) {
    const env = made.find((e) => e.metadata.name === removing.environment)
    if (env) {
      still.push(removing)
      if (env.metadata.deletionTimestamp) continue
      await ctx.kube.delete(environmentRef(env.metadata.namespace, env.metadata.name))
      const message = `pull request ${removing.number}: its previews are gone; Environment ${env.metadata.name} removed`
      await event('Normal', 'Removed', message)
      continue
    }
    // The Environment has pruned and gone: now the Namespace, if this set made it.
    if (!removing.namespace) continue
    const ref = namespaceRef(removing.namespace)
    const ns = await identity.get<Namespace>(ref).catch(() => undefined)
    if (ns?.metadata.labels?.[SET_LABEL] === namespaceLabel(set)) await identity.delete(ref)
  }
  return still
}

/** Deleting the set: its Environments first (each prunes), then its Namespaces, then the finalizer. */
async function finalize(ctx: ReconcileContext, set: EnvironmentSet, identity: Kube): Promise<Outcome> {
  if (!set.metadata.finalizers?.includes(FINALIZER)) return STOP
  const made = await ctx.kube.list<Environment>(API_VERSION, KIND, {
    namespace: set.metadata.namespace,
    labelSelector: `${SET_LABEL}=${set.metadata.name}`,
  })
  const status = set.status ?? {}
  const going = await removeUnwanted(ctx, set, identity, made, new Set(), status, () => Promise.resolve())
  if (going.length > 0) {
    await writeStatus(ctx, set, { ...status, removing: going })
    return { next: 'requeue', afterMs: BUSY_MS }
  }
  const finalizers = (set.metadata.finalizers ?? []).filter((f) => f !== FINALIZER)
  await ctx.kube.mergePatch(setRef(set.metadata.namespace, set.metadata.name), { metadata: { finalizers } })
  return STOP
}

async function writeStatus(ctx: ReconcileContext, set: EnvironmentSet, status: SetStatus): Promise<void> {
  // A pass that changed nothing writes nothing; one that dropped a field sends it as null (statusPatch).
  if (sameStatus(set.status, status)) return
  const patch = statusPatch(set.status, status, SET_STATUS_FIELDS)
  await ctx.kube.patchStatus(setRef(set.metadata.namespace, set.metadata.name), patch).catch((error: unknown) => {
    if (!(error instanceof KubeApiError && error.code === 404)) throw error
  })
}

const namespaceLabel = (set: EnvironmentSet): string => `${set.metadata.namespace}.${set.metadata.name}`.slice(0, 63)

function ownLabels(set: EnvironmentSet, number: number, namespace: boolean): Record<string, string> {
  return { [SET_LABEL]: namespace ? namespaceLabel(set) : set.metadata.name, [PREVIEW_LABEL]: String(number) }
}

function ownerOf(set: EnvironmentSet): Record<string, unknown> {
  if (!set.metadata.uid) throw new InvalidInputError('InvalidSpec', 'the EnvironmentSet has no uid yet')
  return {
    apiVersion: SET_API_VERSION,
    kind: SET_KIND,
    name: set.metadata.name,
    uid: set.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  }
}
