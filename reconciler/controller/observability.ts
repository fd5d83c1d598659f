/**
 * What an operator watches: Prometheus metrics (`/metrics`) and probes (`/healthz` — the
 * process serves; `/readyz` — the watch is running). One small HTTP server per reconciler.
 */
import { createServer, type Server } from 'node:http'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'

export class Metrics {
  readonly registry = new Registry()
  readonly duration = new Histogram({
    name: 'berth_reconcile_duration_seconds',
    help: 'Duration of one reconcile pass.',
    labelNames: ['namespace', 'name'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  })

  readonly results = new Counter({
    name: 'berth_reconcile_results_total',
    help: 'Reconcile passes by outcome reason (the Ready condition reason).',
    labelNames: ['namespace', 'name', 'reason'] as const,
    registers: [this.registry],
  })

  readonly registryInFlight = new Gauge({
    name: 'berth_registry_passes_in_flight',
    help: 'Reconcile passes talking to each registry host now.',
    labelNames: ['host'] as const,
    registers: [this.registry],
  })

  readonly registryFailures = new Counter({
    name: 'berth_registry_failures_total',
    help: 'Passes that found a registry host not answering (Timeout, RegistryUnreachable), by host.',
    labelNames: ['host', 'reason'] as const,
    registers: [this.registry],
  })

  readonly ready = new Gauge({
    name: 'berth_environment_ready',
    help: '1 when the Environment is Ready, else 0.',
    labelNames: ['namespace', 'name'] as const,
    registers: [this.registry],
  })

  readonly applied = new Gauge({
    name: 'berth_environment_applied_info',
    help: 'The version and digest an Environment runs (value 1).',
    labelNames: ['namespace', 'name', 'version', 'digest'] as const,
    registers: [this.registry],
  })

  readonly notifications = new Counter({
    name: 'berth_notifications_total',
    help: 'Notifications (spec.notify) by result: sent, failed (every try failed), dropped (too many waiting).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  })

  readonly leader = new Gauge({
    name: 'berth_leader',
    help: '1 when this replica reconciles (it holds the Lease, or runs without leader election), 0 while it stands by.',
    registers: [this.registry],
  })

  /** The applied-info labels last set per Environment, so a new version replaces the old series. */
  private readonly appliedLabels = new Map<
    string,
    { namespace: string; name: string; version: string; digest: string }
  >()

  /** Record a finished pass from the Environment's status as patched. */
  observe(
    namespace: string,
    name: string,
    seconds: number,
    status: {
      ready?: { status: string; reason: string } | undefined
      version?: string | undefined
      digest?: string | undefined
    },
  ): void {
    this.duration.observe({ namespace, name }, seconds)
    this.results.inc({ namespace, name, reason: status.ready?.reason ?? 'Unknown' })
    this.ready.set({ namespace, name }, status.ready?.status === 'True' ? 1 : 0)
    if (status.version && status.digest) {
      this.forgetApplied(namespace, name)
      const labels = { namespace, name, version: status.version, digest: status.digest }
      this.applied.set(labels, 1)
      this.appliedLabels.set(`${namespace}/${name}`, labels)
    }
  }

  forget(namespace: string, name: string): void {
    this.ready.remove({ namespace, name })
    this.forgetApplied(namespace, name)
  }

  private forgetApplied(namespace: string, name: string): void {
    const previous = this.appliedLabels.get(`${namespace}/${name}`)
    if (previous) this.applied.remove(previous)
    this.appliedLabels.delete(`${namespace}/${name}`)
  }
}

/** Serve /metrics, /healthz and /readyz on `address` (`host:port`). */
export async function serveObservability(address: string, metrics: Metrics, isReady: () => boolean): Promise<Server> {
  const [host, port] = splitAddress(address)
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n')
    } else if (path === '/readyz') {
      const ready = isReady()
      res
        .writeHead(ready ? 200 : 503, { 'Content-Type': 'text/plain' })
        .end(ready ? 'ok\n' : 'not ready: the watch is not running\n')
    } else if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      )
    } else {
      res.writeHead(404).end()
    }
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  return server
}

function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(':')
  const host = colon > 0 ? address.slice(0, colon) : '0.0.0.0'
  return [host.replace(/^\[|\]$/g, ''), Number(address.slice(colon + 1))]
}
