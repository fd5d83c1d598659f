/** Installing the Environment CRD and waiting until the apiserver serves it. */
import type { Kube } from '../shared/kube.ts'
import { environmentCrd } from '../api/crd.ts'
import { environmentSetCrd } from '../api/environment-set.ts'
import { waitEstablished } from '../shared/crds.ts'

/** Apply the Environment and EnvironmentSet CRDs and wait until they are served. */
export async function installEnvironmentCrd(kube: Kube, timeoutMs = 60_000): Promise<string> {
  const crd = environmentCrd()
  const set = environmentSetCrd()
  await kube.apply(crd)
  await kube.apply(set)
  await waitEstablished(kube, crd.metadata.name, timeoutMs)
  await waitEstablished(kube, set.metadata.name, timeoutMs)
  kube.forgetDiscovery()
  return crd.metadata.name
}
