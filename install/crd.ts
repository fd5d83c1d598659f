/** Installing the Environment CRD and waiting until the apiserver serves it. */
import type { Kube } from '../shared/kube.ts'
import { environmentCrd } from '../api/crd.ts'
import { waitEstablished } from '../shared/crds.ts'

/** Apply the Environment CRD and wait until it is served. */
export async function installEnvironmentCrd(kube: Kube, timeoutMs = 60_000): Promise<string> {
  const crd = environmentCrd()
  await kube.apply(crd)
  await waitEstablished(kube, crd.metadata.name, timeoutMs)
  kube.forgetDiscovery()
  return crd.metadata.name
}
