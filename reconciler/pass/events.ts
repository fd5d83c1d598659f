/**
 * Kubernetes Events about an Environment, for every apply, prune, drift and failure: what
 * `kubectl describe environment` and `kubectl get events` show. Best effort: a failure to
 * record an event never fails a pass.
 */
import type { Kube } from '../../shared/kube.ts'
import type { Environment } from '../../api/environment.ts'

export type EventType = 'Normal' | 'Warning'

export async function recordEvent(
  kube: Kube,
  env: { apiVersion: string; kind: string; metadata: Pick<Environment['metadata'], 'name' | 'namespace' | 'uid'> },
  type: EventType,
  reason: string,
  message: string,
  log?: (fields: Record<string, unknown>) => void,
): Promise<void> {
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')
  try {
    await kube.create({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: `${env.metadata.name}.`, namespace: env.metadata.namespace },
      involvedObject: {
        apiVersion: env.apiVersion,
        kind: env.kind,
        name: env.metadata.name,
        namespace: env.metadata.namespace,
        ...(env.metadata.uid ? { uid: env.metadata.uid } : {}),
      },
      type,
      reason,
      // The apiserver caps event messages at 1 KiB.
      message: message.length > 1000 ? `${message.slice(0, 997)}...` : message,
      source: { component: 'berth-reconciler' },
      reportingComponent: 'berth.dev/reconciler',
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    })
  } catch (error: unknown) {
    log?.({ msg: 'could not record event', reason, error: error instanceof Error ? error.message : String(error) })
  }
}
