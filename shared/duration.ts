/** Durations as Kubernetes and Go tools write them: `500ms`, `30s`, `5m`, `1h30m`. */

export const DURATION = /^(\d+(ms|s|m|h))+$/

/** Parse a duration such as `1m30s` into milliseconds. */
export function durationMs(value: string): number {
  let total = 0
  for (const [, amount, unit] of value.matchAll(/(\d+)(ms|s|m|h)/g)) {
    total += Number(amount) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h']
  }
  return total
}
