/** Waiting until the apiserver serves a CustomResourceDefinition. */
import type { Kube } from './kube.ts'

type WithConditions = { status?: { conditions?: Array<{ type: string; status: string }> } }

/** Wait until CRD `name` is Established; returns it as it is then. */
export async function waitEstablished<T extends object>(
  kube: Kube,
  name: string,
  timeoutMs = 30_000,
): Promise<(T & WithConditions) | undefined> {
  return await kube.waitFor<T & WithConditions>(
    { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name } },
    (crd) => crd?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false,
    timeoutMs,
  )
}
