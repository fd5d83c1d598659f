/**
 * Prune: delete what the previous application had and this one does not — only when the
 * live object still carries this Environment's owner labels. A failed delete stays in the
 * inventory so the next pass retries it; an object already gone is simply forgotten.
 */
import type { Kube } from '../shared/kube.ts'
import { type InventoryEntry, OWNER_LABELS } from './api.ts'
import type { Owner } from './apply.ts'

export type PruneResult = {
  deleted: InventoryEntry[]
  kept: InventoryEntry[]
  failed: Array<{ entry: InventoryEntry; error: string }>
}

/** `Kind namespace/name`, as describeObject names a whole object. */
export const describeEntry = (e: InventoryEntry): string => `${e.kind} ${e.namespace ? `${e.namespace}/` : ''}${e.name}`

export const entryKey = (e: InventoryEntry): string =>
  `${e.apiVersion.includes('/') ? (e.apiVersion.split('/')[0] ?? '') : ''}/${e.kind}/${e.namespace ?? ''}/${e.name}`

export async function prune(
  kube: Kube,
  previous: readonly InventoryEntry[],
  current: readonly InventoryEntry[],
  owner: Owner,
): Promise<PruneResult> {
  const keep = new Set(current.map(entryKey))
  const result: PruneResult = { deleted: [], kept: [], failed: [] }
  for (const entry of previous.filter((e) => !keep.has(entryKey(e)))) {
    const ref = {
      apiVersion: entry.apiVersion,
      kind: entry.kind,
      metadata: { name: entry.name, ...(entry.namespace ? { namespace: entry.namespace } : {}) },
    }
    try {
      const live = await kube.get<{ apiVersion: string; kind: string; metadata: { labels?: Record<string, string> } }>(
        ref,
      )
      if (!live) continue
      const labels = live.metadata.labels ?? {}
      if (labels[OWNER_LABELS.name] !== owner.name || labels[OWNER_LABELS.namespace] !== owner.namespace) {
        result.kept.push(entry)
        continue
      }
      if (await kube.delete(ref)) result.deleted.push(entry)
    } catch (error: unknown) {
      result.failed.push({ entry, error: error instanceof Error ? error.message : String(error) })
    }
  }
  return result
}
