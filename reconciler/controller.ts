/**
 * The controller: watches Environments and feeds a keyed queue whose work is one reconcile
 * pass. A spec change (new generation), a deletion, or a new
 * `berth.dev/reconcile-requested-at` annotation queues the Environment at once; status-only
 * updates (berth's own) do not. Each pass decides when it comes back: its interval
 * (jittered) when healthy, sooner while rolling out, backoff after a failure.
 */
import type { Kube } from '../shared/kube.ts'
import { API_VERSION, type Environment, KIND, RECONCILE_REQUESTED_AT, shardSelector } from './api.ts'
import type { Metrics } from './observability.ts'
import { KeyedQueue } from './queue.ts'
import { type ReconcileContext, reconcileEnvironment } from './reconcile.ts'

export type ControllerOptions = {
  concurrency?: number
  log?: (fields: Record<string, unknown>) => void
  cacheDir: string
  /** Watch only this namespace (default: all). */
  namespace?: string | undefined
  /** Lockdown: the ServiceAccount Environments without one act as. */
  defaultServiceAccount?: string | undefined
  /** Only Environments labelled `berth.dev/shard=<shard>`; undefined: only those without the label. */
  shard?: string | undefined
  metrics?: Metrics
}

type Seen = { generation: number | undefined; requested: string | undefined; deleting: boolean }

export class Controller {
  private readonly kube: Kube
  private readonly queue: KeyedQueue
  private readonly seen = new Map<string, Seen>()
  private watch: { stop: () => Promise<void> } | undefined
  private readonly cancel = new AbortController()
  private readonly log: (fields: Record<string, unknown>) => void
  private readonly namespace: string | undefined
  private readonly shard: string | undefined
  private metrics: Metrics | undefined
  /** True while the watch runs: what /readyz reports. */
  watching = false
  /** Whether start() was ever called (a standby replica under leader election has not). */
  started = false

  constructor(kube: Kube, options: ControllerOptions) {
    this.kube = kube
    this.log = options.log ?? ((): void => undefined)
    this.namespace = options.namespace
    this.shard = options.shard
    const metrics = options.metrics
    const durations = new Map<string, number>()
    const ctx: ReconcileContext = {
      kube,
      cacheDir: options.cacheDir,
      defaultServiceAccount: options.defaultServiceAccount,
      shard: options.shard,
      log: this.log,
      signal: this.cancel.signal,
      onStatus: (key, status) => {
        const ready = status.conditions?.find((c) => c.type === 'Ready')
        const started = durations.get(`${key.namespace}/${key.name}`) ?? Date.now()
        metrics?.observe(key.namespace, key.name, (Date.now() - started) / 1000, {
          ready,
          version: status.lastAppliedVersion,
          digest: status.lastAppliedDigest,
        })
      },
    }
    this.metrics = metrics
    this.queue = new KeyedQueue(
      async (key) => {
        const [namespace = '', name = ''] = key.split('/')
        const started = Date.now()
        durations.set(key, started)
        try {
          const outcome = await reconcileEnvironment(ctx, { namespace, name })
          // The queue backs off on a failure, by its own count; requeues are fixed delays.
          if (outcome.next === 'backoff') throw outcome.error
          return outcome.next === 'requeue' ? { requeueAfterMs: outcome.afterMs } : {}
        } finally {
          this.log({ msg: 'reconciled', environment: key, ms: Date.now() - started })
        }
      },
      { concurrency: options.concurrency ?? 4 },
    )
  }

  async start(): Promise<void> {
    this.started = true
    this.watch = await this.kube.watch<Environment>(
      API_VERSION,
      KIND,
      (type, env) => this.onEvent(type, env),
      (error) => {
        this.log({ msg: 'watch failed; restarting', error: error instanceof Error ? error.message : String(error) })
      },
      this.namespace,
      // Each shard watches only its own Environments; relabelling one hands it over (a deletion here, an add there).
      shardSelector(this.shard),
    )
    this.watching = true
  }

  /**
   * Stop watching; nothing new starts. The passes in flight may finish within `graceMs`; after
   * that their registry and apiserver calls are cancelled, so shutdown never hangs on a call.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.watching = false
    await this.watch?.stop()
    const cancel = setTimeout(() => {
      this.cancel.abort()
      this.kube.close()
    }, graceMs)
    await this.queue.stop()
    clearTimeout(cancel)
  }

  private onEvent(type: 'add' | 'update' | 'delete', env: Environment): void {
    const key = `${env.metadata.namespace}/${env.metadata.name}`
    if (type === 'delete') {
      this.seen.delete(key)
      this.queue.forget(key)
      this.metrics?.forget(env.metadata.namespace, env.metadata.name)
      return
    }
    const now: Seen = {
      generation: env.metadata.generation,
      requested: env.metadata.annotations?.[RECONCILE_REQUESTED_AT],
      deleting: Boolean(env.metadata.deletionTimestamp),
    }
    const before = this.seen.get(key)
    this.seen.set(key, now)
    if (
      type === 'add'
      || !before
      || before.generation !== now.generation
      || before.requested !== now.requested
      || (now.deleting && !before.deleting)
    )
      this.queue.add(key)
  }
}
