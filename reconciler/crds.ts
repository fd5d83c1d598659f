/** Installing CRDs and waiting until the apiserver serves them. */
import type { Kube } from '../shared/kube.ts'
import { environmentCrd } from './api.ts'

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

/** Apply the Environment CRD and wait until it is served. */
export async function installEnvironmentCrd(kube: Kube, timeoutMs = 60_000): Promise<string> {
  const crd = environmentCrd()
  await kube.apply(crd)
  await waitEstablished(kube, crd.metadata.name, timeoutMs)
  kube.forgetDiscovery()
  return crd.metadata.name
}
