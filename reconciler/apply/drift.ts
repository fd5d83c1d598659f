/**
 * Drift: a live object that differs from what applying the artifact would make of it. The
 * server-side dry run of the apply is compared with the live object, so defaults and fields
 * other managers own are alike on both sides, and only what berth's apply would change shows.
 */
import type { Kube } from '../../shared/kube.ts'
import { describeObject, type KubeObject } from '../../shared/manifests.ts'
import { inParallel } from './apply.ts'

/** An object that differs from the artifact: the fields that would change, or `missing` when it is not there at all. */
export type Drift = { object: string; fields: string[]; missing?: true; of: KubeObject }
/** What a drift check found, and every live object it read (what health needs when nothing is re-applied). */
export type DriftCheck = { drift: Drift[]; live: KubeObject[] }

const VOLATILE = new Set(['resourceVersion', 'generation', 'managedFields', 'creationTimestamp', 'uid', 'selfLink'])

/** Objects that drifted, with their differing field paths: a read and a dry run per object, nothing written. */
export async function findDrift(kube: Kube, objects: readonly KubeObject[]): Promise<DriftCheck> {
  const checks = await inParallel(objects, async (object): Promise<{ drift?: Drift; live?: KubeObject }> => {
    const live = await kube.get<KubeObject>(object)
    const name = describeObject(object)
    if (!live) return { drift: { object: name, fields: ['(deleted)'], missing: true, of: object } }
    const wanted = await kube.apply<Record<string, unknown>>(object, { dryRun: true })
    const fields = diffPaths(comparable(wanted), comparable(live), '')
    return { live, ...(fields.length > 0 ? { drift: { object: name, fields, of: object } } : {}) }
  })
  return {
    drift: checks.flatMap((c) => (c.drift ? [c.drift] : [])),
    live: checks.flatMap((c) => (c.live ? [c.live] : [])),
  }
}

export function comparable(object: Record<string, unknown>): Record<string, unknown> {
  const rest = { ...object }
  const metadata = rest.metadata
  delete rest.status
  delete rest.metadata
  const meta = Object.fromEntries(
    Object.entries((metadata ?? {}) as Record<string, unknown>).filter(([k]) => !VOLATILE.has(k)),
  )
  return { ...rest, metadata: meta }
}

/** Paths (`spec.replicas`, `data.v`) where `a` and `b` differ. Pure. */
export function diffPaths(a: unknown, b: unknown, prefix: string): string[] {
  if (a === b) return []
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()
    return keys.flatMap((k) =>
      diffPaths((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], prefix ? `${prefix}.${k}` : k),
    )
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix || '(root)']
}
