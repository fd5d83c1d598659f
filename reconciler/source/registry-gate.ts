/**
 * One tenant's slow registry cannot stall everyone else. Every pass holds one of the
 * reconciler's `--concurrency` slots while it runs; a registry that accepts connections and
 * never answers would hold each pass that asks it until oras's deadline. So, per registry host:
 * - at most `perHost` oras runs talk to it at once; a pass that finds it full waits a moment
 *   (a healthy registry answers in milliseconds), then ends with RegistryBusy and comes back in a
 *   few seconds, giving its slot to Environments elsewhere;
 * - a host whose last pass ended in a timeout or could not reach it is not asked again for a
 *   while (5 s, doubling to 1 min: a circuit breaker) — those passes fail at once with the same
 *   reason, naming the host, instead of waiting out another deadline.
 * The metrics show in-flight passes and failures per host.
 */
import { RemoteError, WaitingError } from '../../shared/errors.ts'
import { OrasError } from '../../shared/oras.ts'

export type GateOptions = {
  /** Passes that may wait on one registry host at once. */
  perHost: number
  now?: () => number
  /** Told the passes in flight per host after each change (a gauge). */
  inFlight?: (host: string, count: number) => void
  /** Told each pass that failed against a host, and why (a counter). */
  failed?: (host: string, reason: string) => void
}

/** How long a run waits for its turn on a full host before its pass gives up its slot. */
export const WAIT_MS = 1_000
/** How soon a pass that found its registry full tries again. */
export const BUSY_RETRY_MS = 5_000
const FIRST_PAUSE_MS = 5_000
const LONGEST_PAUSE_MS = 60_000

type Broken = { until: number; failures: number; reason: string; message: string }

export class RegistryGate {
  private readonly options: GateOptions
  private readonly inFlight = new Map<string, number>()
  private readonly broken = new Map<string, Broken>()
  private readonly waiting = new Map<string, Array<() => void>>()

  constructor(options: GateOptions) {
    this.options = options
  }

  /** What a pass on `repository` (`host/path`) gives oras: every run waits its turn on that host. */
  gateFor(repository: string): () => Promise<(error?: unknown) => void> {
    const host = repository.split('/')[0] ?? repository
    return () => this.acquire(host)
  }

  /**
   * A turn on `host`; resolves with what to call when the oras run is done (with its error, if
   * it failed). Throws when the host is backing off, or still full after {@link WAIT_MS}.
   */
  async acquire(host: string): Promise<(error?: unknown) => void> {
    const now = this.now()
    const broken = this.broken.get(host)
    if (broken && broken.until > now) {
      const seconds = Math.ceil((broken.until - now) / 1000)
      throw new RemoteError(
        broken.reason,
        `${host} did not answer lately (${broken.message}); not asked again for ${seconds} s`,
      )
    }
    if ((this.inFlight.get(host) ?? 0) >= this.options.perHost && !(await this.turn(host))) {
      throw new WaitingError(
        'RegistryBusy',
        `${host} already has ${this.options.perHost} requests waiting on it; trying again in ${BUSY_RETRY_MS / 1000} s`,
        BUSY_RETRY_MS,
      )
    }
    this.set(host, (this.inFlight.get(host) ?? 0) + 1)
    let left = false
    return (error?: unknown) => {
      if (left) return
      left = true
      this.set(host, (this.inFlight.get(host) ?? 1) - 1)
      this.waiting.get(host)?.shift()?.()
      this.judge(host, error)
    }
  }

  /** Wait up to WAIT_MS for a run on `host` to finish; whether one did (and the turn is ours). */
  private turn(host: string): Promise<boolean> {
    return new Promise((resolve) => {
      const queue = this.waiting.get(host) ?? []
      this.waiting.set(host, queue)
      const timer = setTimeout(() => {
        queue.splice(queue.indexOf(woken), 1)
        resolve(false)
      }, WAIT_MS)
      const woken = (): void => {
        clearTimeout(timer)
        resolve(true)
      }
      queue.push(woken)
    })
  }

  private judge(host: string, error: unknown): void {
    const unanswered = error instanceof OrasError && (error.failure === 'timeout' || error.failure === 'unreachable')
    if (!unanswered) {
      if (error === undefined) this.broken.delete(host)
      return
    }
    const failures = (this.broken.get(host)?.failures ?? 0) + 1
    const pause = Math.min(FIRST_PAUSE_MS * 2 ** (failures - 1), LONGEST_PAUSE_MS)
    const message = error.message.length > 200 ? `${error.message.slice(0, 200)}…` : error.message
    this.broken.set(host, { until: this.now() + pause, failures, reason: error.reason, message })
    this.options.failed?.(host, error.reason)
  }

  private set(host: string, count: number): void {
    if (count > 0) this.inFlight.set(host, count)
    else this.inFlight.delete(host)
    this.options.inFlight?.(host, count)
  }

  private now(): number {
    return (this.options.now ?? Date.now)()
  }
}
