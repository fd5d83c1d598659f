/**
 * Leader election on a coordination.k8s.io Lease, so several replicas are safe: only the
 * leader reconciles. client-go's algorithm: renew every retry period; take over a Lease only
 * when its record has not changed for leaseDuration by *our* clock (timestamps written by
 * others are never trusted); every write carries the resourceVersion read, so of two
 * concurrent writers one gets 409 and loses; failing to renew within the renew deadline
 * means leadership is lost. On shutdown the Lease is released for a fast hand-over.
 *
 * The renew deadline is kept by a watchdog timer of its own, not by the renew loop: a renew
 * request that hangs (an apiserver that stops answering) cannot keep a leader that has lost
 * its Lease reconciling. Lease requests also carry a deadline shorter than the renew deadline.
 */
import { hostname } from 'node:os'
import { KubeApiError, type Kube } from '../../shared/kube.ts'
import { LEASE_NAME } from '../../api/well-known.ts'

export type LeaderOptions = {
  namespace: string
  name?: string
  identity?: string
  leaseDurationMs?: number
  renewDeadlineMs?: number
  retryPeriodMs?: number
  log?: (fields: Record<string, unknown>) => void
}

type Lease = {
  apiVersion: 'coordination.k8s.io/v1'
  kind: 'Lease'
  metadata: { name: string; namespace: string; resourceVersion?: string }
  spec: {
    holderIdentity?: string
    leaseDurationSeconds?: number
    acquireTime?: string
    renewTime?: string
    leaseTransitions?: number
  }
}

/** MicroTime as the apiserver wants it: RFC 3339 with microseconds. */
const microTime = (ms: number): string => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z')

export class LeaderElector {
  readonly identity: string
  private readonly kube: Kube
  private readonly o: Required<Omit<LeaderOptions, 'log'>> & Pick<LeaderOptions, 'log'>
  private observed: { record: string; at: number } | undefined
  private lastRenew = 0
  private leading = false
  private stopped = false
  private timer: NodeJS.Timeout | undefined
  private watchdog: NodeJS.Timeout | undefined

  constructor(kube: Kube, options: LeaderOptions) {
    this.kube = kube
    this.identity = options.identity ?? `${hostname()}-${process.pid}`
    this.o = {
      name: LEASE_NAME,
      identity: this.identity,
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      ...options,
    }
  }

  /** Run until stopped: `onStarted` when this process becomes leader, `onStopped` when it loses the lease. */
  run(onStarted: () => void, onStopped: () => void): void {
    const lose = (): void => {
      this.leading = false
      this.o.log?.({ msg: 'lost leadership', identity: this.identity })
      onStopped()
    }
    // Checked on its own clock: a renew that never returns must not hold this decision.
    this.watchdog = setInterval(() => {
      if (this.leading && Date.now() - this.lastRenew > this.o.renewDeadlineMs) lose()
    }, Math.max(50, Math.min(this.o.retryPeriodMs, this.o.renewDeadlineMs) / 4))
    const tick = async (): Promise<void> => {
      if (this.stopped) return
      const ok = await this.tryAcquireOrRenew().catch((error: unknown) => {
        this.o.log?.({ msg: 'lease update failed', error: error instanceof Error ? error.message : String(error) })
        return false
      })
      const now = Date.now()
      if (ok) {
        this.lastRenew = now
        if (!this.leading) {
          this.leading = true
          this.o.log?.({ msg: 'became leader', identity: this.identity })
          onStarted()
        }
      } else if (this.leading && now - this.lastRenew > this.o.renewDeadlineMs) {
        lose()
      }
      // stop() may have run while this tick awaited the apiserver.
      if (this.running()) this.timer = setTimeout(() => void tick(), this.o.retryPeriodMs * (1 + Math.random() * 0.2))
    }
    void tick()
  }

  private running(): boolean {
    return !this.stopped
  }

  /** Stop renewing and, when leading, release the Lease so another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    if (this.watchdog) clearInterval(this.watchdog)
    if (!this.leading) return
    this.leading = false
    const lease = await this.kube.get<Lease>(this.ref()).catch(() => undefined)
    if (lease?.spec.holderIdentity === this.identity) {
      await this.kube
        .update<Lease>({ ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 } })
        .catch(() => undefined)
    }
  }

  private ref(): { apiVersion: string; kind: string; metadata: { name: string; namespace: string } } {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.o.name, namespace: this.o.namespace },
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = Date.now()
    const seconds = Math.ceil(this.o.leaseDurationMs / 1000)
    const lease = await this.kube.get<Lease>(this.ref())
    if (!lease) {
      await this.kube.create<Lease>({
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.o.name, namespace: this.o.namespace },
        spec: {
          holderIdentity: this.identity,
          leaseDurationSeconds: seconds,
          acquireTime: microTime(now),
          renewTime: microTime(now),
          leaseTransitions: 0,
        },
      })
      return true
    }
    const holder = lease.spec.holderIdentity ?? ''
    if (holder !== this.identity) {
      // Expiry by our clock: since when has the record stayed exactly as it is?
      const record = JSON.stringify(lease.spec)
      if (this.observed?.record !== record) this.observed = { record, at: now }
      const expired = holder === '' || now - this.observed.at > (lease.spec.leaseDurationSeconds ?? seconds) * 1000
      if (!expired) return false
    }
    try {
      await this.kube.update<Lease>({
        ...lease,
        spec: {
          holderIdentity: this.identity,
          leaseDurationSeconds: seconds,
          acquireTime: holder === this.identity ? (lease.spec.acquireTime ?? microTime(now)) : microTime(now),
          renewTime: microTime(now),
          leaseTransitions: (lease.spec.leaseTransitions ?? 0) + (holder === this.identity ? 0 : 1),
        },
      })
      return true
    } catch (error: unknown) {
      if (error instanceof KubeApiError && error.code === 409) return false
      throw error
    }
  }
}
