/**
 * Prune: delete what the previous application had and this one does not — only when the
 * live object still carries this Environment's owner labels. A failed delete stays in the
 * inventory so the next pass retries it; an object already gone is simply forgotten.
 */
import { type Kube, KubeApiError, type ObjectRef } from '../../shared/kube.ts'
import { describeObject } from '../../shared/manifests.ts'
import type { Watched } from './owned.ts'
import { type InventoryEntry, OWNER_LABELS } from '../../api/environment.ts'
import { PRUNE_WITH_CONTENTS } from '../../api/well-known.ts'
import { inParallel, type Owner } from './apply.ts'
import { describeContents, foreignContents } from './prune-guard.ts'

export type PruneFailure = { entry: InventoryEntry; error: string }
/**
 * deleted; failed (kept and retried); blocked: a Namespace or CRD that holds what this Environment
 * does not own (kept, not deleted, said); forced: deleted with such contents, as its annotation allowed.
 */
export type PruneResult = {
  deleted: InventoryEntry[]
  failed: PruneFailure[]
  blocked?: PruneFailure[]
  forced?: PruneFailure[]
}

/** The reference that reads or deletes an inventory entry. */
export function refOf(e: InventoryEntry): ObjectRef {
  return {
    apiVersion: e.apiVersion,
    kind: e.kind,
    metadata: { name: e.name, ...(e.namespace ? { namespace: e.namespace } : {}) },
  }
}

/** `Kind namespace/name`, as describeObject names a whole object. */
export const describeEntry = (e: InventoryEntry): string => describeObject(refOf(e))

export const entryKey = (e: InventoryEntry): string =>
  `${e.apiVersion.includes('/') ? (e.apiVersion.split('/')[0] ?? '') : ''}/${e.kind}/${e.namespace ?? ''}/${e.name}`

/** `Kind ns/name: why` for each failure, joined. */
export const describeFailures = (failed: readonly PruneFailure[]): string =>
  failed.map((f) => `${describeEntry(f.entry)}: ${f.error}`).join('; ')

/** What became of one entry: deleted (maybe forced), failed, blocked, or nothing (gone, or no longer berth's). */
type Pruned = { deleted?: InventoryEntry; failed?: PruneFailure; blocked?: PruneFailure; forced?: PruneFailure }

/** Kinds that take what is inside along: deleted after everything else, so their own contents have gone first. */
const CONTAINERS = new Set(['Namespace', 'CustomResourceDefinition'])

/**
 * Delete what `previous` had and `current` has not. `watched`: what a listed watch last saw of them (by object key),
 * judged instead of reading each first; the delete's preconditions make a stale copy harmless (read and judged again).
 */
export async function prune(
  kube: Kube,
  previous: readonly InventoryEntry[],
  current: readonly InventoryEntry[],
  owner: Owner,
  watched: ReadonlyMap<string, Watched> = new Map(),
): Promise<PruneResult> {
  const keep = new Set(current.map(entryKey))
  const gone = previous.filter((e) => !keep.has(entryKey(e)))
  // A delete each (and a read where no watch vouches), several at a time: thousands of objects are not a serial walk.
  const one = (entry: InventoryEntry): Promise<Pruned> => pruneOne(kube, entry, owner, watched.get(entryKey(entry)))
  const outcomes = [
    ...(await inParallel(gone.filter((e) => !CONTAINERS.has(e.kind)), one)),
    ...(await inParallel(gone.filter((e) => CONTAINERS.has(e.kind)), one)),
  ]
  const result: PruneResult = { deleted: [], failed: [] }
  for (const o of outcomes) {
    if (o.deleted) result.deleted.push(o.deleted)
    if (o.failed) result.failed.push(o.failed)
    if (o.blocked) (result.blocked ??= []).push(o.blocked)
    if (o.forced) (result.forced ??= []).push(o.forced)
  }
  return result
}

/** How often an object that changes while it is being pruned is read and judged again, within one pass. */
const JUDGE_ATTEMPTS = 3

type Live = { metadata: { labels?: Record<string, string>; annotations?: Record<string, string> } & Version }
type Version = { uid?: string; resourceVersion?: string }

async function pruneOne(kube: Kube, entry: InventoryEntry, owner: Owner, watched?: Watched): Promise<Pruned> {
  try {
    // The watch says it is gone, or no longer labelled berth's: forget it, as a read finding so would.
    if (watched === 'gone') return {}
    let live = watched === undefined ? await kube.get<Live>(refOf(entry)) : (watched as Live)
    for (let attempt = 1; attempt <= JUDGE_ATTEMPTS; attempt++) {
      const outcome = await judgeAndDelete(kube, entry, owner, live)
      if (!('changed' in outcome)) return outcome
      live = outcome.changed
    }
    return { failed: { entry, error: `changed ${JUDGE_ATTEMPTS} times while being pruned; judged again next pass` } }
  } catch (error: unknown) {
    return { failed: { entry, error: error instanceof Error ? error.message : String(error) } }
  }
}

/**
 * Judge `live` (the watched copy, or a read) and delete exactly that copy: its uid and resourceVersion go as
 * preconditions, so an object taken over, relabelled or replaced since is never deleted on the strength of the old
 * copy (`changed`: the object as read after the refusal, to judge again).
 */
async function judgeAndDelete(
  kube: Kube,
  entry: InventoryEntry,
  owner: Owner,
  live: Live | undefined,
): Promise<Pruned | { changed: Live | undefined }> {
  const labels = live?.metadata.labels ?? {}
  // Gone already, or no longer berth's (someone took it over): forget it, never delete it.
  if (labels[OWNER_LABELS.name] !== owner.name || labels[OWNER_LABELS.namespace] !== owner.namespace) return {}
  // A Namespace or CRD takes what is inside along: look first.
  const inside = await foreignContents(kube, entry, owner)
  let forced: PruneFailure | undefined
  if (inside.length > 0) {
    const what = describeContents(inside)
    if (live?.metadata.annotations?.[PRUNE_WITH_CONTENTS] !== 'true') {
      const error = `holds what this Environment does not own: ${what}; kept. Annotate it `
        + `${PRUNE_WITH_CONTENTS}="true" to prune it with its contents`
      return { blocked: { entry, error } }
    }
    forced = { entry, error: `deleted with ${what} (${PRUNE_WITH_CONTENTS}="true")` }
  }
  const ref = refOf(entry)
  const judged = versionOf(live)
  let deleted: boolean
  try {
    deleted = await kube.delete(ref, judged)
  } catch (error: unknown) {
    if (!(error instanceof KubeApiError && error.code === 409)) throw error
    const now = await kube.get<Live>(ref)
    const current = versionOf(now)
    // A 409 for another reason (a Namespace already terminating) is a failure like any other.
    if (current.uid === judged.uid && current.resourceVersion === judged.resourceVersion) throw error
    return { changed: now }
  }
  return { ...(forced ? { forced } : {}), ...(deleted ? { deleted: entry } : {}) }
}

const versionOf = (o: Live | undefined): Version => ({
  ...(o?.metadata.uid ? { uid: o.metadata.uid } : {}),
  ...(o?.metadata.resourceVersion ? { resourceVersion: o.metadata.resourceVersion } : {}),
})
