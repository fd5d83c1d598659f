/**
 * The controller: watches Environments and feeds a keyed queue whose work is one reconcile
 * pass. A spec change (new generation), a deletion, or a new
 * `berth.dev/reconcile-requested-at` annotation queues the Environment at once; status-only
 * updates (berth's own) do not. So does a change by someone else to an object berth applied
 * (owned.ts watches them). Each pass decides when it comes back: its interval (jittered) when
 * healthy, sooner while rolling out, backoff after a failure.
 *
 * What makes the steady state cheap lives here, shared by every pass: the Environments as the
 * watch delivered them (a pass the queue's timer started reads that, not the apiserver), registry
 * lookups shared for a short window, artifacts parsed once per digest, and the watched objects.
 */
import { messageOf } from '../../shared/errors.ts'
import type { Kube, Watching } from '../../shared/kube.ts'
import type { Located } from '../../shared/manifests.ts'
import { API_VERSION, type Environment, KIND, RECONCILE_REQUESTED_AT, shardSelector } from '../../api/environment.ts'
import { RegistryGate } from '../source/registry-gate.ts'
import type { Metrics } from './observability.ts'
import { Lru, SharedLookups } from '../../shared/memo.ts'
import { Notifier, type NotifierOptions } from '../notify/notifier.ts'
import { OwnedObjects } from '../apply/owned.ts'
import { KeyedQueue } from './queue.ts'
import { readyCondition } from '../pass/status.ts'
import { dependsOnOf } from '../pass/depends-on.ts'
import { type EnvironmentSet, SET_API_VERSION, SET_KIND, SET_LABEL } from '../../api/environment-set.ts'
import { reconcileSet } from '../sets/set-pass.ts'
import { type Outcome, type ReconcileContext, reconcileEnvironment } from '../pass/reconcile.ts'

/** Queue keys of EnvironmentSets: `set:<namespace>/<name>`, beside Environments' `<namespace>/<name>`. */
const SET_KEY = 'set:'

/** What the queue does with a pass's outcome: it backs off on a failure by its own count; requeues are fixed delays. */
function queued(outcome: Outcome): { requeueAfterMs?: number } {
  if (outcome.next === 'backoff') throw outcome.error
  return outcome.next === 'requeue' ? { requeueAfterMs: outcome.afterMs } : {}
}

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
  /** The cluster's name in notifications (`--cluster-name`). */
  clusterName?: string | undefined
  /** The shortest interval an Environment gets (`--min-interval`); none when undefined. */
  minIntervalMs?: number | undefined
  /** The Prometheus metric checks ask when they name no Secret (`--prometheus-address`). */
  prometheusAddress?: string | undefined
  /** How notifications are delivered (tries, delays, deadline); defaults in Notifier. */
  notify?: Omit<NotifierOptions, 'kube' | 'log' | 'count'>
}

export class Controller {
  private readonly kube: Kube
  private readonly queue: KeyedQueue
  /** Each Environment as the watch last delivered it (managedFields dropped). */
  private readonly environments = new Map<string, Environment>()
  /** Environments whose next pass must read them from the apiserver: something happened since the timer was set. */
  private readonly stale = new Set<string>()
  /** `namespace/name` of a dependency → the Environments whose spec.dependsOn names it. */
  private readonly dependents = new Map<string, Set<string>>()
  /** The passes running now, each cancellable when its pin changes (a health wait ends at once). */
  private readonly running = new Map<string, AbortController>()
  /** The objects berth applied, watched for changes by others. */
  readonly owned: OwnedObjects
  /** Registry lookups shared between Environments. */
  readonly lookups = new SharedLookups()
  /** Delivers spec.notify notifications in the background. */
  readonly notifier: Notifier
  private watch: Watching | undefined
  private setWatch: Watching | undefined
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
    const concurrency = options.concurrency ?? 4
    const ctx: ReconcileContext = {
      kube,
      cacheDir: options.cacheDir,
      minIntervalMs: options.minIntervalMs,
      prometheusAddress: options.prometheusAddress,
      peer: (namespace, name) => this.environments.get(`${namespace}/${name}`),
      // Half the slots at most for any one registry host: the other half always serves Environments elsewhere.
      registries: new RegistryGate({
        perHost: Math.max(1, Math.floor(concurrency / 2)),
        inFlight: (host, count) => metrics?.registryInFlight.set({ host }, count),
        failed: (host, reason) => metrics?.registryFailures.inc({ host, reason }),
      }),
      defaultServiceAccount: options.defaultServiceAccount,
      shard: options.shard,
      log: this.log,
      signal: this.cancel.signal,
      onStatus: (key, status) => {
        const ready = readyCondition(status)
        const started = durations.get(`${key.namespace}/${key.name}`) ?? Date.now()
        metrics?.observe(key.namespace, key.name, (Date.now() - started) / 1000, {
          ready,
          version: status.lastAppliedVersion,
          digest: status.lastAppliedDigest,
        })
      },
    }
    this.owned = new OwnedObjects((key) => this.changed(key), { log: this.log, namespace: options.namespace })
    this.notifier = new Notifier({
      ...options.notify,
      kube,
      log: this.log,
      count: (result) => metrics?.notifications.inc({ result }),
    })
    Object.assign(ctx, {
      notifier: this.notifier,
      clusterName: options.clusterName,
      owned: this.owned,
      lookups: this.lookups,
      // A few versions per repository at a time, a few folders each: small, and bounded whatever the cluster.
      artifacts: { files: new Lru<Map<string, Buffer>>(16), objects: new Lru<Located[]>(64) },
    })
    this.metrics = metrics
    this.queue = new KeyedQueue(
      async (key) => {
        const isSet = key.startsWith(SET_KEY)
        const [namespace = '', name = ''] = (isSet ? key.slice(SET_KEY.length) : key).split('/')
        if (isSet) return queued(await reconcileSet(ctx, { namespace, name }))
        const started = Date.now()
        durations.set(key, started)
        // A pass the timer started reads the Environment as watched; one an event asked for reads it afresh.
        const known = this.stale.delete(key) ? undefined : this.environments.get(key)
        const superseded = new AbortController()
        this.running.set(key, superseded)
        try {
          return queued(await reconcileEnvironment(ctx, { namespace, name }, known, superseded.signal))
        } finally {
          this.running.delete(key)
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
      {
        event: (type, env) => this.onEvent(type, env),
        error: (error) => this.log({ msg: 'watch failed; restarting', error: messageOf(error) }),
      },
      // Each shard watches only its own Environments; relabelling one hands it over (a deletion here, an add there).
      { namespace: this.namespace, labelSelector: shardSelector(this.shard) },
    )
    // EnvironmentSets: each queued on a change, and on a change of what one of its Environments says (below).
    this.setWatch = await this.kube.watch<EnvironmentSet>(
      SET_API_VERSION,
      SET_KIND,
      {
        event: (type, set) => {
          const key = `${SET_KEY}${set.metadata.namespace}/${set.metadata.name}`
          if (type === 'delete') this.queue.forget(key)
          else this.queue.add(key)
        },
        error: (error) => this.log({ msg: 'EnvironmentSet watch failed; restarting', error: messageOf(error) }),
      },
      { namespace: this.namespace, labelSelector: shardSelector(this.shard) },
    )
    await Promise.all([this.watch.listed, this.setWatch.listed])
    this.watching = true
  }

  /**
   * Stop watching; nothing new starts. The passes in flight may finish within `graceMs`; after
   * that their registry and apiserver calls are cancelled, so shutdown never hangs on a call.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.watching = false
    await this.watch?.stop()
    await this.setWatch?.stop()
    this.owned.stop()
    const cancel = setTimeout(() => {
      this.cancel.abort()
      this.kube.close()
    }, graceMs)
    await this.queue.stop()
    clearTimeout(cancel)
    // What is still queued gets one more try at most, within what is left of the grace period.
    this.notifier.close()
    await Promise.race([this.notifier.idle(), new Promise((resolve) => setTimeout(resolve, 2000).unref())])
  }

  /** Someone else changed or deleted an object this Environment applied: check it now. */
  private changed(key: string): void {
    if (!this.environments.has(key)) return
    this.stale.add(key)
    this.queue.add(key)
  }

  private onEvent(type: 'add' | 'update' | 'delete', env: Environment): void {
    const key = `${env.metadata.namespace}/${env.metadata.name}`
    const previous = this.environments.get(key)
    this.indexDependencies(key, previous, type === 'delete' ? undefined : env)
    if (type === 'delete') {
      this.environments.delete(key)
      this.stale.delete(key)
      this.owned.forget(key)
      this.queue.forget(key)
      this.metrics?.forget(env.metadata.namespace, env.metadata.name)
      return
    }
    const before = previous?.metadata
    // Kept for the passes the timer starts; managedFields is most of an object's size and no pass reads it.
    const metadata: Environment['metadata'] & { managedFields?: unknown } = { ...env.metadata }
    delete metadata.managedFields
    this.environments.set(key, { ...env, metadata })
    const requested = (m: Environment['metadata']): string | undefined => m.annotations?.[RECONCILE_REQUESTED_AT]
    const respecified = before !== undefined && before.generation !== metadata.generation
    if (
      type === 'add'
      || !before
      || respecified
      || requested(before) !== requested(metadata)
      || (metadata.deletionTimestamp && !before.deletionTimestamp)
    ) {
      // A pass waiting on health for the old pin gives up now; the queue runs the new one right after it.
      if (respecified) this.running.get(key)?.abort()
      this.stale.add(key)
      this.queue.add(key)
    }
    // Turned Ready (or stopped being): what waits on it (dependsOn) looks again now, not at its next retry; so does
    // the EnvironmentSet that made it, whose status shows it.
    if (previous && readyKey(previous) !== readyKey(env)) {
      for (const dependent of this.dependents.get(key) ?? []) this.changed(dependent)
      const set = env.metadata.labels?.[SET_LABEL]
      if (set) this.queue.add(`${SET_KEY}${env.metadata.namespace}/${set}`)
    }
  }

  /** Keep {@link dependents} in step with each Environment's spec.dependsOn. */
  private indexDependencies(key: string, before: Environment | undefined, after: Environment | undefined): void {
    const namespace = (before ?? after)?.metadata.namespace ?? ''
    for (const name of dependsOnOf(before)) {
      const set = this.dependents.get(`${namespace}/${name}`)
      set?.delete(key)
      if (set?.size === 0) this.dependents.delete(`${namespace}/${name}`)
    }
    for (const name of dependsOnOf(after)) {
      const dependency = `${namespace}/${name}`
      const set = this.dependents.get(dependency) ?? new Set<string>()
      set.add(key)
      this.dependents.set(dependency, set)
    }
  }
}

/** What dependents care about: whether it is Ready, for which generation and version. */
function readyKey(env: Environment): string {
  const ready = readyCondition(env.status)
  return `${ready?.status ?? ''}|${env.status?.observedGeneration ?? ''}|${env.status?.lastAppliedDigest ?? ''}`
}
