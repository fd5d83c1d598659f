/**
 * Event-driven drift. berth watches, per kind it has applied and per identity it applied them
 * as, only the objects carrying its owner label, and keeps of each what health reads and a
 * fingerprint of what drift compares (everything but status and bookkeeping metadata). A pass
 * that applied or checked an object confirms its fingerprint; from then on:
 *
 * - a change by someone else (another fingerprint) or a deletion queues a pass of the owning
 *   Environment at once, and that pass checks only the objects that changed;
 * - a periodic pass sends nothing for objects the watch shows as berth left them; health reads
 *   the watched copies.
 *
 * An object is checked the old way (a read and a dry run) whenever the watch cannot vouch for
 * it: never confirmed since this process started, its watch not listed yet, broken, or refused
 * (an identity without list/watch on the kind). Memory grows with the objects berth owns only:
 * label-selected watches never see the rest of the cluster, and each object is kept slimmed.
 */
import { createHash } from 'node:crypto'
import { type Kube, KubeApiError, type WatchHandlers, type Watching } from '../../shared/kube.ts'
import { type KubeObject, objectKey } from '../../shared/manifests.ts'
import { messageOf } from '../../shared/errors.ts'
import { OWNER_LABELS } from '../../api/environment.ts'
import { PRUNE_WITH_CONTENTS } from '../../api/well-known.ts'
import { comparable } from './drift.ts'

type Log = (fields: Record<string, unknown>) => void

/** One label-selected watch: a kind, in one namespace or all, as one identity. */
class Scope {
  readonly key: string
  /** Listed and watching: what the store says of this scope's objects is current. */
  synced = false
  /** Environments whose confirmed objects this scope covers. */
  readonly users = new Set<string>()
  private readonly watching: Promise<Watching | undefined>

  constructor(key: string, kube: Kube, object: KubeObject, namespace: string | undefined, owned: OwnedObjects) {
    this.key = key
    const { apiVersion, kind } = object
    const handlers: WatchHandlers<KubeObject> = {
      event: (type, o) => owned.observe(type, { ...o, apiVersion, kind }),
      error: (error) => {
        const forbidden = error instanceof KubeApiError && error.code === 403
        owned.log({
          msg: forbidden
            ? 'may not watch owned objects; drift in them is found at each interval'
            : 'watch of owned objects failed; listing again',
          watch: key,
          error: messageOf(error),
        })
      },
      synced: (synced) => (this.synced = synced),
    }
    this.watching = kube
      .watch<KubeObject>(apiVersion, kind, handlers, { namespace, labelSelector: OWNER_LABELS.name })
      .catch((error: unknown) => {
        handlers.error?.(error)
        return undefined
      })
  }

  stop(): void {
    this.synced = false
    void this.watching.then((w) => w?.stop())
  }
}

/** What a listed watch last saw of an object: a slim copy, or that it is gone (or no longer labelled berth's). */
export type Watched = KubeObject | 'gone'
/** What the watch last saw of an object. */
type Seen = { fingerprint: string; live: KubeObject; deleted?: true }
/** What a pass left an object as: its fingerprint then, and that copy for health until the watch has one. */
type Confirmed = { fingerprint: string; live: KubeObject; scope: string }

export class OwnedObjects {
  private readonly scopes = new Map<string, Scope>()
  /** What the watches last saw of confirmed objects (nothing else is kept), by object key. */
  private readonly store = new Map<string, Seen>()
  /** Per Environment (`namespace/name`): its objects as its last pass left them. */
  private readonly confirmed = new Map<string, Map<string, Confirmed>>()
  /** Object key → the Environment that confirmed it. */
  private readonly owners = new Map<string, string>()
  readonly log: Log
  private readonly onChange: (environment: string) => void
  private readonly namespace: string | undefined

  /**
   * @param onChange told the Environment (`namespace/name`) one of whose confirmed objects
   *   someone else changed or deleted.
   * @param options.namespace the reconciler's own identity watches only this namespace (its rights end there).
   */
  constructor(
    onChange: (environment: string) => void,
    options: { log?: Log | undefined; namespace?: string | undefined } = {},
  ) {
    this.onChange = onChange
    this.log = options.log ?? ((): void => undefined)
    this.namespace = options.namespace
  }

  /**
   * Of `objects` (as this Environment would apply them), the ones that need a check, and the
   * watched copies of the others (what health reads).
   */
  suspects(
    environment: string,
    kube: Kube,
    objects: readonly KubeObject[],
  ): { check: KubeObject[]; live: KubeObject[] } {
    const mine = this.confirmed.get(environment)
    const check: KubeObject[] = []
    const live: KubeObject[] = []
    for (const object of objects) {
      const key = objectKey(object)
      const confirmed = mine?.get(key)
      const scope = this.scopes.get(scopeKey(kube, object, this.namespace))
      const seen = this.store.get(key)
      const vouched = confirmed !== undefined && scope?.synced === true && confirmed.scope === scope.key
      if (!vouched || seen?.deleted || (seen && seen.fingerprint !== confirmed.fingerprint)) check.push(object)
      else live.push(seen?.live ?? confirmed.live)
    }
    return { check, live }
  }

  /**
   * After a pass: `wanted` are this Environment's objects now, acted on as `kube`'s identity, and
   * `live` those of them the pass applied or read and found as berth means them (as the apiserver
   * returned them). The others keep what was confirmed before; objects no longer wanted are no
   * longer its, and watches no Environment needs stop. Returns, of those no longer wanted, what a
   * listed watch last saw (a slim copy, or `gone`) by object key: what prune judges without a read.
   */
  confirm(
    environment: string,
    kube: Kube,
    live: readonly KubeObject[],
    wanted: readonly KubeObject[],
  ): Map<string, Watched> {
    const before = this.confirmed.get(environment) ?? new Map<string, Confirmed>()
    const fresh = new Map(live.map((o) => [objectKey(o), o]))
    const now = new Map<string, Confirmed>()
    for (const object of wanted) {
      const key = objectKey(object)
      const read = fresh.get(key)
      const kept = before.get(key)
      const scope = this.scopeFor(kube, object)
      scope.users.add(environment)
      if (read) now.set(key, { fingerprint: fingerprint(read), live: slim(read), scope: scope.key })
      else if (kept) now.set(key, kept)
      if (now.has(key)) this.owners.set(key, environment)
    }
    this.confirmed.set(environment, now)
    const leaving = this.lastSeen(before, now)
    this.release(environment, before, now)
    return leaving
  }

  /** Of `before` not in `now`: what a listed watch last saw of each, where one vouches for it. */
  private lastSeen(before: Map<string, Confirmed>, now: Map<string, Confirmed>): Map<string, Watched> {
    const seen = new Map<string, Watched>()
    for (const [key, confirmed] of before) {
      if (now.has(key) || this.scopes.get(confirmed.scope)?.synced !== true) continue
      const last = this.store.get(key)
      seen.set(key, last?.deleted ? 'gone' : (last?.live ?? confirmed.live))
    }
    return seen
  }

  /** Keep what is confirmed, but not `objects` (drift left under driftPolicy warn): they stay suspects. */
  unconfirm(environment: string, objects: readonly KubeObject[]): void {
    const mine = this.confirmed.get(environment)
    for (const object of objects) {
      const key = objectKey(object)
      mine?.delete(key)
      this.store.delete(key)
    }
  }

  /** The Environment is gone (or another shard's): nothing of it is watched for it any more. */
  forget(environment: string): void {
    const before = this.confirmed.get(environment)
    this.confirmed.delete(environment)
    if (before) this.release(environment, before, new Map())
  }

  stop(): void {
    for (const scope of this.scopes.values()) scope.stop()
    this.scopes.clear()
    this.store.clear()
    this.confirmed.clear()
    this.owners.clear()
  }

  /** How many of this Environment's objects a listed watch covers: what the next quiet pass will not check. */
  watched(environment: string): number {
    const mine = [...(this.confirmed.get(environment)?.values() ?? [])]
    return mine.filter((c) => this.scopes.get(c.scope)?.synced === true).length
  }

  /** One watch event: store it; tell the owner when it is not what berth left. */
  observe(type: 'add' | 'update' | 'delete', object: KubeObject): void {
    const key = objectKey(object)
    // Whose it is by berth's own record, not by its labels: stripping the labels is a change to it. Labels naming
    // another Environment are not: two Environments claiming one object would otherwise re-apply it back and forth
    // as fast as their watches see each other; the periodic pass shows that conflict at its own pace.
    const labelled = labelledOwner(object)
    const owner = labelled === undefined || labelled === this.owners.get(key) ? this.owners.get(key) : undefined
    // Another shard's, or not confirmed by a pass of this process yet (its pass will confirm it), or pruned:
    // nothing to keep. So memory follows what this reconciler owns, even though a watch is per kind.
    const confirmed = owner ? this.confirmed.get(owner)?.get(key) : undefined
    if (!owner || !confirmed) {
      this.store.delete(key)
      return
    }
    const seen: Seen = {
      fingerprint: fingerprint(object),
      live: slim(object),
      ...(type === 'delete' ? { deleted: true } : {}),
    }
    this.store.set(key, seen)
    if (seen.deleted || seen.fingerprint !== confirmed.fingerprint) this.onChange(owner)
  }

  private scopeFor(kube: Kube, object: KubeObject): Scope {
    const key = scopeKey(kube, object, this.namespace)
    let scope = this.scopes.get(key)
    if (!scope) {
      const namespace = kube.impersonating || this.namespace ? object.metadata.namespace : undefined
      scope = new Scope(key, kube, object, namespace, this)
      this.scopes.set(key, scope)
    }
    return scope
  }

  private release(environment: string, before: Map<string, Confirmed>, now: Map<string, Confirmed>): void {
    // An object no longer this Environment's (pruned, or the Environment forgotten) is kept no longer.
    for (const key of before.keys()) {
      if (now.has(key)) continue
      this.store.delete(key)
      if (this.owners.get(key) === environment) this.owners.delete(key)
    }
    const still = new Set([...now.values()].map((c) => c.scope))
    for (const { scope: key } of before.values()) {
      if (still.has(key)) continue
      const scope = this.scopes.get(key)
      scope?.users.delete(environment)
      if (scope && scope.users.size === 0) {
        scope.stop()
        this.scopes.delete(key)
      }
    }
  }
}

/**
 * The watch an object falls under: its kind, as the identity that applied it, cluster-wide for
 * the reconciler's own identity, else per namespace: an impersonated identity's rights, and a
 * reconciler limited to one namespace's, end at namespaces (a watch they may not make leaves
 * its objects to the periodic check).
 */
function scopeKey(kube: Kube, object: KubeObject, restricted: string | undefined): string {
  const where = kube.impersonating || restricted ? (object.metadata.namespace ?? '') : '*'
  return `${kube.impersonating ?? ''}|${object.apiVersion}|${object.kind}|${where}`
}

/** What drift compares, hashed: the object without status and bookkeeping metadata, keys sorted. */
export function fingerprint(object: KubeObject): string {
  return createHash('sha256')
    .update(stableJson(comparable(object)))
    .digest('base64')
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`
  }
  return value === undefined ? 'null' : JSON.stringify(value)
}

/**
 * What health reads of an object (identity, generation, deletion, the spec fields kstatus looks at, status) and what
 * prune judges by (uid and resourceVersion, the owner labels, the prune-with-contents annotation).
 */
export function slim(object: KubeObject): KubeObject {
  const { apiVersion, kind, metadata } = object
  const spec = object.spec as Record<string, unknown> | undefined
  const kept: Record<string, unknown> = {}
  for (const field of ['replicas', 'updateStrategy', 'type']) if (spec?.[field] !== undefined) kept[field] = spec[field]
  return {
    apiVersion,
    kind,
    metadata: {
      name: metadata.name,
      ...(metadata.namespace ? { namespace: metadata.namespace } : {}),
      ...(metadata.generation !== undefined ? { generation: metadata.generation } : {}),
      ...(metadata.deletionTimestamp !== undefined ? { deletionTimestamp: metadata.deletionTimestamp } : {}),
      ...(metadata.uid !== undefined ? { uid: metadata.uid } : {}),
      ...(metadata.resourceVersion !== undefined ? { resourceVersion: metadata.resourceVersion } : {}),
      ...pick('labels', metadata.labels, [OWNER_LABELS.name, OWNER_LABELS.namespace]),
      ...pick('annotations', metadata.annotations, [PRUNE_WITH_CONTENTS]),
    },
    ...(Object.keys(kept).length > 0 ? { spec: kept } : {}),
    ...(object.status !== undefined ? { status: object.status } : {}),
  }
}

/** `{ [field]: the keys of `map` among `keys` }`, or nothing when it has none of them. */
function pick(field: string, map: unknown, keys: readonly string[]): Record<string, Record<string, string>> {
  const from = (map ?? {}) as Record<string, string>
  const kept = Object.fromEntries(keys.filter((k) => from[k] !== undefined).map((k) => [k, from[k] as string]))
  return Object.keys(kept).length > 0 ? { [field]: kept } : {}
}

/** `namespace/name` of the Environment an object's owner labels name, if they name one. */
function labelledOwner(object: KubeObject): string | undefined {
  const labels = object.metadata.labels as Record<string, string> | undefined
  const name = labels?.[OWNER_LABELS.name]
  const namespace = labels?.[OWNER_LABELS.namespace]
  return name && namespace ? `${namespace}/${name}` : undefined
}
