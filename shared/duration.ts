/** Durations as Kubernetes and Go tools write them: `500ms`, `30s`, `5m`, `1h30m`. */

export const DURATION = /^(\d+(ms|s|m|h))+$/
/** A duration with some part that is not zero (no lookahead: the CRD's pattern is checked by Go's RE2). */
export const POSITIVE_DURATION = /^(\d+(ms|s|m|h))*0*[1-9]\d*(ms|s|m|h)(\d+(ms|s|m|h))*$/

/** Parse a duration such as `1m30s` into milliseconds. */
export function durationMs(value: string): number {
  let total = 0
  for (const [, amount, unit] of value.matchAll(/(\d+)(ms|s|m|h)/g)) {
    total += Number(amount) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h']
  }
  return total
}

/** `ms` as the shortest duration text that means it: 90000 → `1m30s`, 500 → `500ms`. */
export function formatDuration(ms: number): string {
  const parts: string[] = []
  let rest = ms
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    const n = Math.floor(rest / size)
    if (n > 0) parts.push(`${n}${unit}`)
    rest -= n * size
  }
  return parts.join('') || '0s'
}
