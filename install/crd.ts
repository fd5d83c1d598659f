/** Installing the Environment CRD and waiting until the apiserver serves it. */
import type { Kube } from '../shared/kube.ts'
import { environmentCrd } from '../api/crd.ts'
import { environmentSetCrd } from '../api/environment-set.ts'
import { API_VERSION, KIND } from '../api/environment.ts'
import { PROMOTED_BY } from '../api/well-known.ts'
import { waitAdmitted, waitEstablished } from '../shared/crds.ts'

/** Apply the Environment and EnvironmentSet CRDs and wait until they are served. */
export async function installEnvironmentCrd(kube: Kube, timeoutMs = 60_000): Promise<string> {
  const crd = environmentCrd()
  const set = environmentSetCrd()
  await kube.apply(crd)
  await kube.apply(set)
  await waitEstablished(kube, crd.metadata.name, timeoutMs)
  await waitEstablished(kube, set.metadata.name, timeoutMs)
  kube.forgetDiscovery()
  await waitEnvironmentsAdmitted(kube, 'default', timeoutMs)
  return crd.metadata.name
}

/**
 * Until an Environment in `namespace` would be admitted (a server-side dry run of one): Established is not yet served,
 * and for a moment the apiserver may still say the kind is "not found". After this, Environments can be created;
 * with `stamped`, they are also stamped by the promotion policies.
 */
export async function waitEnvironmentsAdmitted(
  kube: Kube,
  namespace: string,
  timeoutMs: number,
  options: { stamped?: boolean } = {},
): Promise<void> {
  const probe = {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: 'berth-crd-probe', namespace },
    spec: { source: { repository: 'oci://registry.invalid/probe' }, version: '0.0.0' },
  }
  // With the promotion policies installed, also until they stamp: an Environment created before the mutating policy
  // takes effect would carry no berth.dev/promoted-by, and nothing would stamp it until its pin changes.
  const stamped = (r: { metadata?: { annotations?: Record<string, string> } }): boolean =>
    !options.stamped || r.metadata?.annotations?.[PROMOTED_BY] !== undefined
  await waitAdmitted(kube, probe, timeoutMs, stamped)
}
