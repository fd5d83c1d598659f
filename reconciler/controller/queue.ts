/**
 * A work queue keyed by object: one key is never processed twice at once (a key added while
 * it runs is run again right after), at most `concurrency` keys run together, a failure is
 * retried with exponential backoff, and a success may ask to come back after a delay.
 */
export type Work = (key: string) => Promise<{ requeueAfterMs?: number }>

export type QueueOptions = {
  concurrency: number
  /** First retry delay; doubles per consecutive failure up to `maxBackoffMs`. */
  baseBackoffMs?: number
  maxBackoffMs?: number
  /** Spread of requeue delays (0.1 = ±10 %), so many objects do not wake together. */
  jitter?: number
}

export class KeyedQueue {
  private readonly pending = new Set<string>()
  private readonly running = new Set<string>()
  private readonly again = new Set<string>()
  private readonly timers = new Map<string, NodeJS.Timeout>()
  private readonly failures = new Map<string, number>()
  private readonly idle: Array<() => void> = []
  private stopped = false

  private readonly work: Work
  private readonly options: QueueOptions

  constructor(work: Work, options: QueueOptions) {
    this.work = work
    this.options = options
  }

  /** Process `key` now, or after `delayMs` (an earlier pending timer for it is replaced). */
  add(key: string, delayMs = 0): void {
    if (this.stopped) return
    const timer = this.timers.get(key)
    if (timer) clearTimeout(timer)
    this.timers.delete(key)
    if (delayMs > 0) {
      this.timers.set(key, setTimeout(() => {
        this.timers.delete(key)
        this.add(key)
      }, delayMs))
      return
    }
    if (this.running.has(key)) this.again.add(key)
    else this.pending.add(key)
    this.pump()
  }

  /** Drop a key: no pending run, no timer. */
  forget(key: string): void {
    const timer = this.timers.get(key)
    if (timer) clearTimeout(timer)
    this.timers.delete(key)
    this.pending.delete(key)
    this.again.delete(key)
    this.failures.delete(key)
  }

  /** Stop taking work; resolves when what runs now has finished. */
  async stop(): Promise<void> {
    this.stopped = true
    for (const timer of this.timers.values()) clearTimeout(timer)
    this.timers.clear()
    this.pending.clear()
    if (this.running.size > 0) await new Promise<void>((resolve) => this.idle.push(resolve))
  }

  private pump(): void {
    for (const key of [...this.pending]) {
      if (this.running.size >= this.options.concurrency) return
      this.pending.delete(key)
      this.running.add(key)
      void this.run(key)
    }
  }

  private async run(key: string): Promise<void> {
    let delay: number | undefined
    try {
      const outcome = await this.work(key)
      this.failures.delete(key)
      delay = outcome.requeueAfterMs
    } catch {
      const failures = (this.failures.get(key) ?? 0) + 1
      this.failures.set(key, failures)
      delay = Math.min((this.options.baseBackoffMs ?? 1000) * 2 ** (failures - 1), this.options.maxBackoffMs ?? 300_000)
    } finally {
      this.running.delete(key)
    }
    if (this.again.delete(key)) this.add(key)
    else if (delay !== undefined) this.add(key, this.jittered(delay))
    if (this.running.size === 0 && this.stopped) for (const resolve of this.idle.splice(0)) resolve()
    this.pump()
  }

  private jittered(ms: number): number {
    const spread = this.options.jitter ?? 0.1
    return Math.max(1, Math.round(ms * (1 + (Math.random() * 2 - 1) * spread)))
  }
}
