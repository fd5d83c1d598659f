/**
 * What Environments share between passes so that the steady state costs almost nothing:
 * registry lookups (a tag's digest, a repository's tags) for a short window, and artifacts read
 * and parsed once per digest. Neither changes what a pass decides: a digest names the same bytes
 * forever, and a lookup is at most `windowMs` old (an explicit `berth reconcile` skips it).
 */

/** Lookups shared for `windowMs`: callers asking the same key while one runs join it; a success is reused. */
export class SharedLookups {
  private readonly done = new Map<string, { at: number; value: unknown }>()
  private readonly running = new Map<string, Promise<unknown>>()
  readonly windowMs: number
  /** Lookups actually made (not shared): what tests count. */
  made = 0

  constructor(windowMs = 10_000) {
    this.windowMs = windowMs
  }

  /**
   * The answer for `key`: a recent one, the one being looked up (joined), or a new lookup. With
   * `join`, joining a lookup that takes longer than `join.ms` fails with `join.otherwise()`: a
   * caller that holds something scarce (a queue slot) does not wait behind a lookup that hangs.
   */
  async get<T>(
    key: string,
    lookup: () => Promise<T>,
    now = Date.now(),
    join?: { ms: number; otherwise: () => Error },
  ): Promise<T> {
    const done = this.done.get(key)
    if (done && now - done.at < this.windowMs) return done.value as T
    const running = this.running.get(key)
    if (running && join) return (await joinWithin(running, join)) as T
    if (running) return (await running) as T
    this.made++
    const started = lookup()
    this.running.set(key, started)
    try {
      const value = await started
      this.done.set(key, { at: now, value })
      this.sweep(now)
      return value
    } finally {
      this.running.delete(key)
    }
  }

  // Old answers go, so the map holds at most what one window asked.
  private sweep(now: number): void {
    for (const [key, { at }] of this.done) if (now - at >= this.windowMs) this.done.delete(key)
  }
}

function joinWithin(running: Promise<unknown>, join: { ms: number; otherwise: () => Error }): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(join.otherwise()), join.ms)
  })
  return Promise.race([running, late]).finally(() => clearTimeout(timer))
}

/** A least-recently-used map holding at most `limit` entries. */
export class Lru<V> {
  private readonly entries = new Map<string, V>()
  private readonly limit: number

  constructor(limit: number) {
    this.limit = limit
  }

  /** The value of `key`, made by `make` when absent (a failure is not kept). */
  async get(key: string, make: () => Promise<V> | V): Promise<V> {
    const found = this.entries.get(key)
    if (found !== undefined) {
      this.entries.delete(key)
      this.entries.set(key, found)
      return found
    }
    const value = await make()
    this.entries.set(key, value)
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.limit) break
      this.entries.delete(oldest)
    }
    return value
  }

  get size(): number {
    return this.entries.size
  }
}
