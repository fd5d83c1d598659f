/**
 * `berth install --apply`: apply what `installObjects` renders, then delete what an earlier
 * install of the same instance created and this one no longer renders (found by berth's
 * install labels), so moving between a cluster-wide, a `--watch-namespace` and a
 * `--default-service-account` install leaves no stale rights behind. The Namespace and the CRD
 * are never deleted: that would delete every Environment.
 */
import type { Kube } from '../shared/kube.ts'
import { INSTANCE_LABEL } from './manifests.ts'
import { INSTALL_LABELS } from '../api/well-known.ts'

type Installed = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }

/** The kinds an install renders that may go stale. */
const PRUNABLE = [
  ['v1', 'ServiceAccount'],
  ['v1', 'Service'],
  ['apps/v1', 'Deployment'],
  ['policy/v1', 'PodDisruptionBudget'],
  ['rbac.authorization.k8s.io/v1', 'Role'],
  ['rbac.authorization.k8s.io/v1', 'RoleBinding'],
  ['rbac.authorization.k8s.io/v1', 'ClusterRole'],
  ['rbac.authorization.k8s.io/v1', 'ClusterRoleBinding'],
] as const

export type InstallResult = { applied: string[]; deleted: string[] }

/** Apply `objects` (server-side; a dry run with `dryRun`) and delete the stale ones of install `instance`. */
export async function applyInstall(
  kube: Kube,
  objects: readonly Installed[],
  instance: string,
  options: { dryRun?: boolean; prune?: boolean } = {},
): Promise<InstallResult> {
  const applied: string[] = []
  for (const object of objects) {
    await kube.apply(object, { dryRun: options.dryRun ?? false })
    applied.push(shown(object))
  }
  if (options.prune === false) return { applied, deleted: [] }
  const keep = new Set(objects.map(key))
  const selector = `app.kubernetes.io/name=${INSTALL_LABELS['app.kubernetes.io/name']},${INSTANCE_LABEL}=${instance}`
  const deleted: string[] = []
  for (const [apiVersion, kind] of PRUNABLE) {
    const found = await kube.list<Installed>(apiVersion, kind, { labelSelector: selector })
    for (const stale of found.filter((o) => !keep.has(key(o)))) {
      if (!options.dryRun) await kube.delete(stale)
      deleted.push(shown(stale))
    }
  }
  return { applied, deleted }
}

const key = (o: Installed): string => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`

// As kubectl prints them: `clusterrole/berth-apply`, with the namespace when there is one.
const shown = (o: Installed): string =>
  `${o.kind.toLowerCase()}/${o.metadata.name}${o.metadata.namespace ? ` -n ${o.metadata.namespace}` : ''}`
