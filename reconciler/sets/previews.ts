/**
 * Which previews a set keeps, decided without I/O: the newest preview tag of each pull request, minus those whose ttl
 * passed without a new push, at most `maxPreviews` of them, the longest-known first (the oldest keep running; a new
 * pull request beyond the limit waits). The times are the set's own observations, kept in its status: when it first
 * saw each pull request and each pull request's newest push. Nothing a tag or an artifact says about time is trusted.
 */
import { durationMs } from '../../shared/duration.ts'
import { previewOf, type Preview, type SetSpec, type SetStatus } from '../../api/environment-set.ts'

export type Wanted = { number: number; version: string; since: string; pushed: string }

export type PreviewPlan = {
  /** The previews to run, oldest first. */
  keep: Wanted[]
  /** Pull requests with previews beyond maxPreviews: not run. */
  refused: Wanted[]
  /** Previews whose ttl passed: removed, and not brought back until a new push. */
  expired: Array<{ number: number; version: string }>
  /** When the next ttl ends, in ms from now; undefined when none will. */
  nextExpiryMs?: number
}

/** The plan for `tags` at `now`, after what the set recorded in `status`. */
export function planPreviews(
  tags: readonly string[],
  spec: Pick<SetSpec, 'maxPreviews' | 'ttl'>,
  status: Pick<SetStatus, 'previews' | 'expired'> | undefined,
  now: Date,
): PreviewPlan {
  const newest = new Map<number, number>()
  for (const tag of tags) {
    const preview = previewOf(tag)
    if (preview && preview.push > (newest.get(preview.number) ?? 0)) newest.set(preview.number, preview.push)
  }
  const known = new Map<number, Preview>((status?.previews ?? []).map((p) => [p.number, p]))
  const at = now.toISOString()
  const ttlMs = spec.ttl ? durationMs(spec.ttl) : undefined
  const expired: PreviewPlan['expired'] = []
  const wanted: Wanted[] = []
  for (const [number, push] of newest) {
    const version = `0.0.0-pr.${number}.${push}`
    // Expired, and nothing pushed since: stays gone.
    if (status?.expired?.some((e) => e.number === number && e.version === version)) {
      expired.push({ number, version })
      continue
    }
    const before = known.get(number)
    const pushed = before?.version === version ? before.pushed : at
    const since = before?.since ?? at
    if (ttlMs !== undefined && now.getTime() - Date.parse(pushed) >= ttlMs) {
      expired.push({ number, version })
      continue
    }
    wanted.push({ number, version, since, pushed })
  }
  wanted.sort((a, b) => a.since.localeCompare(b.since) || a.number - b.number)
  const keep = wanted.slice(0, spec.maxPreviews)
  const ends = ttlMs === undefined ? [] : keep.map((w) => Date.parse(w.pushed) + ttlMs - now.getTime())
  return {
    keep,
    refused: wanted.slice(spec.maxPreviews),
    expired,
    ...(ends.length > 0 ? { nextExpiryMs: Math.max(Math.min(...ends), 1000) } : {}),
  }
}
