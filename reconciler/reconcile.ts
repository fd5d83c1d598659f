/**
 * One reconcile pass of one Environment, top to bottom:
 * read → deleted? → finalizer → valid spec? → suspended? → resolve → fetch → select →
 * apply → prune → health → one status patch at the end. The error's class decides what
 * happens next: a spec the user must fix stalls (no retry until it changes); anything else
 * is retried with backoff, and the version applied before keeps running untouched.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BerthError } from '../shared/errors.ts'
import { type Kube, KubeApiError } from '../shared/kube.ts'
import { checkObjects, describeObject, type KubeObject, type Located, parseManifests } from '../shared/manifests.ts'
import type { RegistryAccess } from '../shared/oras.ts'
import { formatIssues } from '../shared/validation.ts'
import {
  durationMs,
  type Environment,
  environmentRef,
  type EnvironmentSpec,
  type EnvironmentStatus,
  FINALIZER,
  PROMOTED_BY,
  RECONCILE_REQUESTED_AT,
  SUSPENDED,
  sourceOf,
  specSchema,
} from './api.ts'
import { type Applied, applyObjects, entryOf, type Owner, placeObjects } from './apply.ts'
import { findDrift } from './drift.ts'
import { recordEvent } from './events.ts'
import { fetchArtifact } from './fetch.ts'
import { health } from './health.ts'
import { describeEntry, entryKey, prune } from './prune.ts'
import { resolve, resolveDigest } from './resolve.ts'
import { firstAttemptOf, recordHistory, removeCondition, setCondition } from './status.ts'

export type ReconcileContext = {
  kube: Kube
  /** Content-addressed cache of artifact layers. */
  cacheDir: string
  now?: () => Date
  log?: (fields: Record<string, unknown>) => void
  /** Told the status each pass writes (metrics). */
  onStatus?: (key: { namespace: string; name: string }, status: EnvironmentStatus) => void
}

/** What the queue should do next: come back after this long, or not at all. */
export type Outcome = { requeueAfterMs?: number }

/** The spec cannot work as written; retrying will not help until it changes. */
class StalledError extends BerthError {}

const HEALTH_POLL_MS = 2_000

export async function reconcileEnvironment(
  ctx: ReconcileContext,
  key: { namespace: string; name: string },
): Promise<Outcome> {
  const now = ctx.now ?? ((): Date => new Date())
  const ref = environmentRef(key.namespace, key.name)
  const env = await ctx.kube.get<Environment>(ref)
  if (!env) return {}
  const status: EnvironmentStatus = structuredClone(env.status ?? {})
  const owner: Owner = { name: env.metadata.name, namespace: env.metadata.namespace }
  const started = now()
  let outcome: Outcome
  let patchStatus = true
  try {
    if (env.metadata.deletionTimestamp) {
      patchStatus = await finalize(ctx.kube, env, status, owner)
      return {}
    }
    if (!(env.metadata.finalizers ?? []).includes(FINALIZER)) {
      await ctx.kube.mergePatch(ref, { metadata: { finalizers: [...(env.metadata.finalizers ?? []), FINALIZER] } })
    }
    const spec = parseSpec(env.spec)
    if (spec.suspend) {
      const a = env.metadata.annotations ?? {}
      const why = a[SUSPENDED.reason]
        ? ` by ${a[SUSPENDED.by] ?? 'unknown'} at ${a[SUSPENDED.at] ?? '?'}: ${a[SUSPENDED.reason]}`
        : ''
      const wasSuspended = status.conditions?.some((c) => c.type === 'Reconciling' && c.reason === 'Suspended') ?? false
      setCondition(
        status,
        {
          type: 'Reconciling',
          status: 'False',
          reason: 'Suspended',
          message: `suspended${why}; no change is made until resumed`,
        },
        now(),
      )
      if (!wasSuspended) await recordEvent(ctx.kube, env, 'Normal', 'Suspended', `suspended${why}`, ctx.log)
      return {}
    }
    if (status.conditions?.some((c) => c.type === 'Reconciling' && c.reason === 'Suspended')) {
      await recordEvent(ctx.kube, env, 'Normal', 'Resumed', 'resumed: changes are made again', ctx.log)
    }
    setCondition(
      status,
      { type: 'Reconciling', status: 'True', reason: 'Progressing', message: `reconciling ${spec.version}` },
      now(),
    )

    const registry = await registryAccess(ctx.kube, env.metadata.namespace, spec)
    try {
      const { repository } = registry
      const pinned = await resolve(repository, spec.version, spec.digest, registry.access)
      status.lastAttemptedVersion = pinned.version
      status.lastAttemptedDigest = pinned.digest
      if (spec.promotion) await checkPromotionGate(ctx.kube, env.metadata.namespace, spec.promotion.from, pinned)
      // After an automatic rollback the pin stays visible, but the last healthy digest is what runs:
      // no retry loop against the version that failed.
      if (status.rolledBackFrom && (status.rolledBackFrom !== pinned.digest || spec.rollback !== 'onFailure'))
        delete status.rolledBackFrom
      const good = status.rolledBackFrom ? lastHealthy(status, pinned.digest) : undefined
      const resolved = good ? await resolveDigest(repository, good.version, good.digest, registry.access) : pinned
      const files = await fetchArtifact(repository, resolved, registry.access, ctx.cacheDir)
      const objects = selectObjects(files, spec.path ?? env.metadata.name)

      // The same digest and spec as last time: this is a periodic pass, so look for drift first.
      // Without drift nothing is written: what the check read is the state, for prune and health.
      const unchanged
        = status.lastAppliedDigest === resolved.digest && status.observedGeneration === env.metadata.generation
      const owned = { ...owner, targetNamespace: spec.targetNamespace }
      let inSync: Applied | undefined
      if (unchanged) {
        const placed = await placeObjects(ctx.kube, objects, owned)
        const { drift, live: read } = await findDrift(ctx.kube, placed)
        const described = drift.map((d) => `${d.object} (${d.fields.slice(0, 5).join(', ')})`).join('; ')
        if (drift.length > 0 && spec.driftPolicy === 'warn') {
          setCondition(
            status,
            {
              type: 'Drifted',
              status: 'True',
              reason: 'DriftDetected',
              message: `differs from ${resolved.version}: ${described}`,
            },
            now(),
          )
          setCondition(
            status,
            {
              type: 'Reconciling',
              status: 'False',
              reason: 'DriftDetected',
              message: 'driftPolicy warn: nothing changed',
            },
            now(),
          )
          await recordEvent(
            ctx.kube,
            env,
            'Warning',
            'DriftDetected',
            `differs from ${resolved.version}: ${described}`,
            ctx.log,
          )
          return { requeueAfterMs: durationMs(spec.interval) }
        }
        if (drift.length > 0)
          await recordEvent(
            ctx.kube,
            env,
            'Normal',
            'DriftCorrected',
            `re-applied ${resolved.version}: ${described}`,
            ctx.log,
          )
        else inSync = { inventory: placed.map(entryOf), live: read }
      }

      const previous = status.inventory ?? []
      const { inventory: applied, live } = inSync ?? (await applyObjects(ctx.kube, objects, owned))
      const pruned = spec.prune
        ? await prune(ctx.kube, previous, applied, owner)
        : { deleted: [], kept: [], failed: [] }
      // Failed deletes stay in the inventory, so the next pass tries them again.
      const applyKeys = new Set(applied.map(entryKey))
      status.inventory = [...applied, ...pruned.failed.map((f) => f.entry).filter((e) => !applyKeys.has(entryKey(e)))]
      status.lastAppliedVersion = resolved.version
      status.lastAppliedDigest = resolved.digest
      // Applying made the cluster match the artifact: whatever drifted is corrected.
      removeCondition(status, 'Drifted')
      ctx.log?.({
        msg: inSync ? 'in sync' : 'applied',
        environment: `${owner.namespace}/${owner.name}`,
        version: resolved.version,
        digest: resolved.digest,
        objects: applied.length,
        pruned: pruned.deleted.length,
      })
      if (!unchanged)
        await recordEvent(
          ctx.kube,
          env,
          'Normal',
          'Applied',
          `applied ${resolved.version} (${resolved.digest}): ${applied.length} objects`,
          ctx.log,
        )
      if (pruned.deleted.length > 0)
        await recordEvent(
          ctx.kube,
          env,
          'Normal',
          'Pruned',
          `deleted ${pruned.deleted.map(describeEntry).join(', ')}`,
          ctx.log,
        )
      if (pruned.failed.length > 0)
        await recordEvent(
          ctx.kube,
          env,
          'Warning',
          'PruneFailed',
          pruned.failed.map((f) => `${f.entry.kind} ${f.entry.name}: ${f.error}`).join('; '),
          ctx.log,
        )

      const since = firstAttemptOf(status, resolved.digest) ?? started.toISOString()
      const by = env.metadata.annotations?.[PROMOTED_BY]
      // The apply responses carry status: health needs no second read right after applying.
      const verdict = healthOf(live)
      const timedOut = now().getTime() - Date.parse(since) > durationMs(spec.timeout)
      const pruneNote
        = pruned.failed.length > 0
          ? `; could not prune ${pruned.failed.map((f) => `${f.entry.kind} ${f.entry.name}`).join(', ')}`
          : ''
      if (verdict.failed.length === 0 && verdict.waiting.length === 0 && good) {
        const message = `${pinned.version} failed its health check and was rolled back; running ${resolved.version}. Pin another version to move on`
        setCondition(status, { type: 'Ready', status: 'False', reason: 'RolledBack', message }, now())
        setCondition(status, { type: 'Reconciling', status: 'False', reason: 'RolledBack', message }, now())
        recordHistory(status, {
          by,
          version: resolved.version,
          digest: resolved.digest,
          started: since,
          finished: now().toISOString(),
          result: 'Succeeded',
        })
        outcome = { requeueAfterMs: durationMs(spec.interval) }
      } else if (verdict.failed.length === 0 && verdict.waiting.length === 0) {
        setCondition(
          status,
          { type: 'Ready', status: 'True', reason: 'Succeeded', message: `applied ${resolved.version}${pruneNote}` },
          now(),
        )
        setCondition(
          status,
          { type: 'Reconciling', status: 'False', reason: 'Succeeded', message: `applied ${resolved.version}` },
          now(),
        )
        recordHistory(status, {
          by,
          version: resolved.version,
          digest: resolved.digest,
          started: since,
          finished: now().toISOString(),
          result: 'Succeeded',
        })
        outcome = { requeueAfterMs: pruned.failed.length > 0 ? HEALTH_POLL_MS : durationMs(spec.interval) }
      } else if (verdict.failed.length > 0 || timedOut) {
        const names = [...verdict.failed, ...verdict.waiting].join('; ')
        setCondition(
          status,
          {
            type: 'Ready',
            status: 'False',
            reason: 'HealthCheckFailed',
            message: `${resolved.version} is unhealthy: ${names}`,
          },
          now(),
        )
        setCondition(
          status,
          { type: 'Reconciling', status: 'False', reason: 'HealthCheckFailed', message: names },
          now(),
        )
        recordHistory(status, {
          by,
          version: resolved.version,
          digest: resolved.digest,
          started: since,
          finished: now().toISOString(),
          result: 'HealthCheckFailed',
        })
        outcome = { requeueAfterMs: durationMs(spec.interval) }
        const fallback = spec.rollback === 'onFailure' && !good ? lastHealthy(status, resolved.digest) : undefined
        if (fallback) {
          status.rolledBackFrom = resolved.digest
          await recordEvent(
            ctx.kube,
            env,
            'Warning',
            'RollingBack',
            `${resolved.version} is unhealthy (${names}); re-applying ${fallback.version} (${fallback.digest})`,
            ctx.log,
          )
          outcome = { requeueAfterMs: 1 }
        }
      } else {
        setCondition(
          status,
          {
            type: 'Ready',
            status: 'False',
            reason: 'Progressing',
            message: `waiting for ${verdict.waiting.join('; ')}`,
          },
          now(),
        )
        recordHistory(status, {
          by,
          version: resolved.version,
          digest: resolved.digest,
          started: since,
          finished: now().toISOString(),
          result: 'Progressing',
        })
        outcome = { requeueAfterMs: HEALTH_POLL_MS }
      }
    } finally {
      await registry.cleanup()
    }
    removeCondition(status, 'Stalled')
    return outcome
  } catch (error: unknown) {
    const reason = error instanceof BerthError ? error.reason : 'ReconcileFailed'
    const message = error instanceof Error ? error.message : String(error)
    const kept = status.lastAppliedVersion ? `; still running ${status.lastAppliedVersion}` : ''
    setCondition(status, { type: 'Ready', status: 'False', reason, message: `${message}${kept}` }, now())
    if (error instanceof StalledError) {
      await recordEvent(ctx.kube, env, 'Warning', reason, message, ctx.log)
      setCondition(status, { type: 'Stalled', status: 'True', reason, message }, now())
      setCondition(status, { type: 'Reconciling', status: 'False', reason, message }, now())
      return {}
    }
    setCondition(status, { type: 'Reconciling', status: 'True', reason: 'RetryingAfterFailure', message }, now())
    await recordEvent(ctx.kube, env, 'Warning', reason, message, ctx.log)
    ctx.log?.({ msg: 'reconcile failed', environment: `${owner.namespace}/${owner.name}`, reason, error: message })
    throw error
  } finally {
    if (patchStatus) {
      status.observedGeneration = env.metadata.generation ?? 0
      const requested = env.metadata.annotations?.[RECONCILE_REQUESTED_AT]
      if (requested) status.lastHandledReconcileAt = requested
      if (status.lastAppliedDigest)
        Object.assign(status, { shortDigest: status.lastAppliedDigest.slice('sha256:'.length, 'sha256:'.length + 12) })
      ctx.onStatus?.(key, status)
      await ctx.kube.patchStatus(ref, status).catch((error: unknown) => {
        // The object may be gone after its finalizer was removed; nothing left to report on.
        if (!(error instanceof KubeApiError && error.code === 404)) throw error
      })
    }
  }
}

function parseSpec(spec: unknown): EnvironmentSpec {
  const parsed = specSchema.safeParse(spec)
  if (!parsed.success) throw new StalledError('InvalidSpec', `spec.${formatIssues(parsed.error)}`)
  return parsed.data
}

/** The objects of one environment's folder: every YAML file below `path`, parsed and checked. */
export function selectObjects(files: ReadonlyMap<string, Buffer>, path: string): Located[] {
  const prefix = `${path.replace(/\/+$/, '')}/`
  const chosen = [...files.keys()].filter((f) => f.startsWith(prefix) && /\.(ya?ml|json)$/.test(f)).sort()
  if (chosen.length === 0) {
    const folders = [...new Set([...files.keys()].filter((f) => f.includes('/')).map((f) => f.split('/')[0]))].join(
      ', ',
    )
    throw new BerthError(
      'PathNotFound',
      `the artifact has no YAML under ${prefix} (it has: ${folders || 'no folders'}); set spec.path`,
    )
  }
  const objects = chosen.flatMap((f) => parseManifests(files.get(f)?.toString('utf8') ?? '', f))
  // Secrets were the packager's decision to allow; here only duplicates matter.
  checkObjects(objects, { allowSecrets: true })
  return objects
}

function healthOf(objects: readonly KubeObject[]): { failed: string[]; waiting: string[] } {
  const failed: string[] = []
  const waiting: string[] = []
  for (const object of objects) {
    const name = describeObject(object)
    const h = health(object)
    if (h.status === 'Failed') failed.push(`${name}: ${h.message}`)
    else if (h.status === 'InProgress') waiting.push(`${name}: ${h.message}`)
  }
  return { failed, waiting }
}

/** The last application that was healthy with another digest than `failed`. */
function lastHealthy(status: EnvironmentStatus, failed: string): { version: string; digest: string } | undefined {
  return (status.history ?? []).findLast((h) => h.result === 'Succeeded' && h.digest !== failed)
}

/** The gate holds in the cluster: a version is applied only once its digest has been Ready upstream. */
async function checkPromotionGate(
  kube: Kube,
  namespace: string,
  upstream: string,
  resolved: { version: string; digest: string },
): Promise<void> {
  const source = await kube.get<Environment>(environmentRef(namespace, upstream))
  const proven = (source?.status?.history ?? []).some((h) => h.digest === resolved.digest && h.result === 'Succeeded')
  if (!proven) {
    throw new BerthError(
      'PromotionBlocked',
      `promotion gate: ${resolved.version} (${resolved.digest}) has not been Ready on ${upstream}; promote it there first`,
    )
  }
}

/** Registry access from the spec; a secretRef becomes a credentials file that lives for this pass only. */
async function registryAccess(
  kube: Kube,
  namespace: string,
  spec: EnvironmentSpec,
): Promise<{ repository: string; access: RegistryAccess; cleanup: () => Promise<void> }> {
  const { repository, access } = sourceOf(spec)
  if (!spec.source.secretRef) return { repository, access, cleanup: () => Promise.resolve() }
  const secret = await kube.get<{
    apiVersion: string
    kind: string
    metadata: { name: string }
    type?: string
    data?: Record<string, string>
  }>({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: spec.source.secretRef.name, namespace },
  })
  const config = secret?.data?.['.dockerconfigjson']
  if (!secret || secret.type !== 'kubernetes.io/dockerconfigjson' || !config) {
    throw new StalledError(
      'InvalidSecret',
      `spec.source.secretRef: Secret ${namespace}/${spec.source.secretRef.name} must exist with type kubernetes.io/dockerconfigjson and a .dockerconfigjson key`,
    )
  }
  const dir = await mkdtemp(join(tmpdir(), 'berth-auth-'))
  const file = join(dir, 'config.json')
  await writeFile(file, Buffer.from(config, 'base64'), { mode: 0o600 })
  return {
    repository,
    access: { ...access, registryConfig: file },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  }
}

/**
 * Deleting an Environment: remove what it applied (unless orphaned), then let it go. Returns whether status still needs
 * a patch.
 */
async function finalize(kube: Kube, env: Environment, status: EnvironmentStatus, owner: Owner): Promise<boolean> {
  const ref = environmentRef(env.metadata.namespace, env.metadata.name)
  if (!(env.metadata.finalizers ?? []).includes(FINALIZER)) return false
  const parsed = specSchema.safeParse(env.spec)
  const orphan = parsed.success && (parsed.data.deletionPolicy === 'orphan' || !parsed.data.prune)
  if (!orphan) {
    const result = await prune(kube, status.inventory ?? [], [], owner)
    if (result.failed.length > 0) {
      status.inventory = result.failed.map((f) => f.entry)
      setCondition(
        status,
        {
          type: 'Ready',
          status: 'False',
          reason: 'DeletionFailed',
          message: `could not remove: ${result.failed.map((f) => `${f.entry.kind} ${f.entry.name}: ${f.error}`).join('; ')}`,
        },
        new Date(),
      )
      throw new BerthError('DeletionFailed', 'could not remove every applied object; retrying')
    }
  }
  await kube.mergePatch(ref, {
    metadata: {
      finalizers: (env.metadata.finalizers ?? []).filter((f) => f !== FINALIZER),
      resourceVersion: env.metadata.resourceVersion,
    },
  })
  return false
}
