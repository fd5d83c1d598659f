/**
 * Prune: delete what the previous application had and this one does not — only when the
 * live object still carries this Environment's owner labels. A failed delete stays in the
 * inventory so the next pass retries it; an object already gone is simply forgotten.
 */
import { type Kube, type ObjectRef } from '../../shared/kube.ts'
import { describeObject } from '../../shared/manifests.ts'
import { type InventoryEntry, OWNER_LABELS } from '../../api/environment.ts'
import type { Owner } from './apply.ts'
import { describeContents, foreignContents, PRUNE_WITH_CONTENTS } from './prune-guard.ts'

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

export async function prune(
  kube: Kube,
  previous: readonly InventoryEntry[],
  current: readonly InventoryEntry[],
  owner: Owner,
): Promise<PruneResult> {
  const keep = new Set(current.map(entryKey))
  const result: PruneResult = { deleted: [], failed: [] }
  for (const entry of previous.filter((e) => !keep.has(entryKey(e)))) {
    const ref = refOf(entry)
    try {
      const live = await kube.get<{
        metadata: { labels?: Record<string, string>; annotations?: Record<string, string> }
      }>(ref)
      const labels = live?.metadata.labels ?? {}
      // Gone already, or no longer berth's (someone took it over): forget it, never delete it.
      if (labels[OWNER_LABELS.name] !== owner.name || labels[OWNER_LABELS.namespace] !== owner.namespace) continue
      // A Namespace or CRD takes what is inside along: look first.
      const inside = await foreignContents(kube, entry, owner)
      if (inside.length > 0) {
        const what = describeContents(inside)
        if (live?.metadata.annotations?.[PRUNE_WITH_CONTENTS] !== 'true') {
          const error = `holds what this Environment does not own: ${what}; kept. Annotate it `
            + `${PRUNE_WITH_CONTENTS}="true" to prune it with its contents`
          ;(result.blocked ??= []).push({ entry, error })
          continue
        }
        ;(result.forced ??= []).push({ entry, error: `deleted with ${what} (${PRUNE_WITH_CONTENTS}="true")` })
      }
      if (await kube.delete(ref)) result.deleted.push(entry)
    } catch (error: unknown) {
      result.failed.push({ entry, error: error instanceof Error ? error.message : String(error) })
    }
  }
  return result
}
