/**
 * What one reconcile pass carries from phase to phase, and what it ends with. A phase reads
 * what earlier phases left on the {@link Pass} and adds its own part; returning a
 * {@link Verdict} ends the pass early (drift under `warn`), and the health phase always ends
 * it. Only the summarize step turns the verdict into status, once.
 */
import type { Kube } from '../../shared/kube.ts'
import type { Located } from '../../shared/manifests.ts'
import type { Environment, EnvironmentSpec, EnvironmentStatus, Receiver } from '../../api/environment.ts'
import type { Applied, Owner } from '../apply/apply.ts'
import type { EventType } from './events.ts'
import type { Lru, SharedLookups } from '../../shared/memo.ts'
import type { Notification } from '../notify/notify.ts'
import type { OwnedObjects, Watched } from '../apply/owned.ts'
import type { PruneResult } from '../apply/prune.ts'
import type { Resolved } from '../source/resolve.ts'
import type { RegistryGate } from '../source/registry-gate.ts'
import type { Source } from '../source/source.ts'

export type Log = (fields: Record<string, unknown>) => void

export type ReconcileContext = {
  kube: Kube
  /** Content-addressed cache of artifact layers. */
  cacheDir: string
  now?: () => Date
  log?: Log
  /** Cancels registry calls in flight (shutdown); apiserver calls end with the client's close(). */
  signal?: AbortSignal
  /**
   * Lockdown: Environments without `spec.serviceAccountName` act as this ServiceAccount of their
   * own namespace; the reconciler never applies with its own identity.
   */
  defaultServiceAccount?: string | undefined
  /** Reconcile only Environments of this shard (`berth.dev/shard`); undefined: only those without one. */
  shard?: string | undefined
  /**
   * The shortest interval any Environment gets (`--min-interval`): a smaller spec.interval is raised to it, so one
   * Environment cannot keep the reconciler busy with nothing to do.
   */
  minIntervalMs?: number | undefined
  /** Passes per registry host, and hosts that stopped answering (the controller's); none: no bound. */
  registries?: RegistryGate | undefined
  /** Told the status each pass writes (metrics). */
  onStatus?: (key: { namespace: string; name: string }, status: EnvironmentStatus) => void
  /** Registry lookups Environments share for a short window (the controller's); without it each pass looks itself. */
  lookups?: SharedLookups
  /** Artifacts read and parsed once per digest (the controller's). */
  artifacts?: { files: Lru<Map<string, Buffer>>; objects: Lru<Located[]> }
  /** Owned objects watched for drift (the controller's): checks only what the watch cannot vouch for. */
  owned?: OwnedObjects
  /** Delivers `spec.notify` notifications in the background; without it none are sent. */
  notifier?: Notifier
  /** The cluster's name in notifications (`--cluster-name`). */
  clusterName?: string | undefined
  /** The Prometheus metric checks ask when they name no Secret (`--prometheus-address`). */
  prometheusAddress?: string | undefined
  /**
   * Environments as the controller's watch last delivered them (dependsOn reads its dependencies here); undefined
   * when not among them, and then the apiserver is asked.
   */
  peer?: (namespace: string, name: string) => Environment | undefined
}

/** Where a pass hands its notifications: queued per receiver, sent in order, never awaited by the pass. */
export type Notifier = {
  send(
    env: Environment,
    receivers: readonly Receiver[],
    identity: () => Promise<Kube>,
    notifications: readonly Notification[],
  ): void
}

/** What the queue does next: come back after a fixed delay, stop until something changes, or back off. */
export type Outcome = { next: 'requeue'; afterMs: number } | { next: 'stop' } | { next: 'backoff'; error: unknown }

export type ConditionText = { status: 'True' | 'False'; reason: string; message: string }

/** How a pass ended, before it is written: the conditions, the history row, and what comes next. */
export type Verdict = {
  /** Absent: Ready keeps what it said (drift under `warn` changes nothing). */
  ready?: ConditionText
  reconciling: ConditionText
  /** A result for the history row of the applied version (Succeeded, Progressing, HealthCheckFailed). */
  history?: string
  /** What decided that result, when more than kstatus did (a metric check): the history row says so. */
  check?: string
  /** The spec cannot work as written: the Stalled condition says so. */
  stalled?: boolean
  /** Suspended (spec.suspend): the Suspended condition carries this message. */
  suspended?: string
  outcome: Outcome
}

/** A new version held by promotion policy (policy.ts): why, and when to look again. */
export type Hold = { reason: 'Frozen' | 'OutsideWindow' | 'AwaitingApproval'; message: string; retryMs: number }

export type Pass = {
  readonly ctx: ReconcileContext
  readonly env: Environment
  readonly spec: EnvironmentSpec
  /** The status being built: a copy of the one read, written once by summarize. */
  readonly status: EnvironmentStatus
  readonly owner: Owner
  readonly now: () => Date
  readonly started: Date
  readonly source: Source
  /**
   * The client that acts on the Environment's objects: impersonating its ServiceAccount when it
   * has one, else the reconciler's own. Status, events and Environments go through ctx.kube.
   */
  readonly kube: Kube
  /** Record a Kubernetes Event about this Environment (best effort). */
  readonly event: (type: EventType, reason: string, message: string) => Promise<void>
  /** Aborted when the pin changes while this pass waits on health: what it waits for is given up at once. */
  readonly superseded?: AbortSignal | undefined
  /** The version the spec names. */
  pinned?: Resolved
  /** The version applied: the pin, or after an automatic rollback the last healthy one. */
  target?: Resolved
  /** The target's files, by path. */
  files?: Map<string, Buffer>
  objects?: Located[]
  /** A new version held by policy (a freeze, the windows): the running version is the target meanwhile. */
  held?: Hold
  /** Set once applying starts: from then on its refusals say what of the version landed. */
  applying?: boolean
  /** True when the live objects already match `target`: nothing was written. */
  inSync?: boolean
  applied?: Applied
  /** What the watch last saw of the objects this pass no longer applies, by object key: prune's first judgement. */
  leaving?: Map<string, Watched>
  pruned?: PruneResult
}

/** One step of the pass. */
export type Phase = (pass: Pass) => Promise<Verdict | undefined>

/** A field an earlier phase must have set; its absence is a bug in the phase order, not user input. */
export function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`reconcile phase order: ${what} is not set yet`)
  return value
}
