/**
 * Prunes that would cascade. Deleting a Namespace deletes everything in it, and deleting a
 * CustomResourceDefinition every object of its kind in the whole cluster — other Environments'
 * data included. Before pruning either, berth looks at what would go with it: anything this
 * Environment does not own blocks the prune (PruneBlocked), unless the live object carries the
 * annotation `berth.dev/prune-with-contents: "true"`, which lets it go ahead (and is recorded).
 */
import { OWNER_LABELS } from '../../api/well-known.ts'
import type { Kube } from '../../shared/kube.ts'
import type { Owner } from './apply.ts'

type Meta = {
  metadata: {
    name: string
    namespace?: string
    labels?: Record<string, string>
    ownerReferences?: unknown[]
    annotations?: Record<string, string>
  }
}

// What every namespace holds on its own, and what follows from something else (endpoints of a
// Service, events): none of it is anybody's data.
const INCIDENTAL = new Set(['Event', 'Endpoints', 'EndpointSlice'])
const AUTOMATIC = new Set(['ServiceAccount/default', 'ConfigMap/kube-root-ca.crt'])

/** What would go with a Namespace or CRD and is not this Environment's; empty when nothing (or not such a kind). */
export async function foreignContents(
  kube: Kube,
  entry: { apiVersion: string; kind: string; name: string },
  owner: Owner,
): Promise<Array<{ kind: string; name: string }>> {
  const mine = (o: Meta): boolean =>
    o.metadata.labels?.[OWNER_LABELS.name] === owner.name
    && o.metadata.labels[OWNER_LABELS.namespace] === owner.namespace
  // Objects with an owner go when their owner goes (a Deployment's ReplicaSets and Pods): judged through it.
  const counts = (o: Meta, kind: string): boolean =>
    !mine(o) && (o.metadata.ownerReferences ?? []).length === 0 && !AUTOMATIC.has(`${kind}/${o.metadata.name}`)
  if (entry.kind === 'Namespace' && entry.apiVersion === 'v1') {
    const kinds = (await kube.listableKinds()).filter((k) => k.namespaced && !INCIDENTAL.has(k.kind))
    const found = await Promise.all(
      kinds.map(async (k) =>
        (await kube.list<Meta>(k.apiVersion, k.kind, { namespace: entry.name }))
          .filter((o) => counts(o, k.kind))
          .map((o) => ({ kind: k.kind, name: o.metadata.name }))),
    )
    return found.flat()
  }
  if (entry.kind === 'CustomResourceDefinition' && entry.apiVersion.startsWith('apiextensions.k8s.io/')) {
    type Version = { name: string; storage?: boolean }
    type Crd = { spec?: { group: string; names: { kind: string }; versions: Version[] } }
    const crd = await kube.get<Crd>({ apiVersion: entry.apiVersion, kind: entry.kind, metadata: { name: entry.name } })
    const version = crd?.spec?.versions.find((v) => v.storage) ?? crd?.spec?.versions[0]
    if (!crd?.spec || !version) return []
    const kind = crd.spec.names.kind
    const objects = await kube.list<Meta>(`${crd.spec.group}/${version.name}`, kind).catch(() => [])
    return objects
      .filter((o) => counts(o, kind))
      .map((o) => ({ kind, name: o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name }))
  }
  return []
}

/** `2 ConfigMap (app-config, settings), 1 Secret (db)`: counts by kind, and a few names each. */
export function describeContents(contents: ReadonlyArray<{ kind: string; name: string }>): string {
  const byKind = new Map<string, string[]>()
  for (const { kind, name } of contents) byKind.set(kind, [...(byKind.get(kind) ?? []), name])
  return [...byKind]
    .map(([kind, names]) => `${names.length} ${kind} (${names.slice(0, 3).join(', ')}${names.length > 3 ? ', …' : ''})`)
    .join(', ')
}
