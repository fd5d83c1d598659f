/**
 * Apply an environment's objects with server-side apply (field manager `berth`, conflicts
 * forced), in the order that lets them land: Namespaces and CRDs first (waiting until each
 * CRD is Established), then a server-side dry run of everything else — one rejection and
 * nothing more is applied — then the rest with bounded parallelism. Every object carries
 * the owner labels that prune checks.
 */
import type { Kube } from '../shared/kube.ts'
import { groupOf, type KubeObject, type Located } from '../shared/manifests.ts'
import { type InventoryEntry, OWNER_LABELS } from './api.ts'
import { waitEstablished } from './crds.ts'

export type Owner = { name: string; namespace: string; targetNamespace?: string | undefined }

const PARALLEL = 8
const FIRST = new Set(['/Namespace', 'apiextensions.k8s.io/CustomResourceDefinition'])

/**
 * What an application left in the cluster: the inventory, and each object as the apiserver returned it (status
 * included).
 */
export type Applied = { inventory: InventoryEntry[]; live: KubeObject[] }

export async function applyObjects(kube: Kube, located: readonly Located[], owner: Owner): Promise<Applied> {
  const objects = located.map((l) => labelled(l.object, owner))
  const first = objects.filter((o) => FIRST.has(`${groupOf(o)}/${o.kind}`))
  const rest = objects.filter((o) => !FIRST.has(`${groupOf(o)}/${o.kind}`))

  const live: KubeObject[] = []
  for (const object of first) live.push(await kube.apply(object))
  const crds = first.filter((o) => o.kind === 'CustomResourceDefinition')
  for (const crd of crds) {
    const established = await waitEstablished<KubeObject>(kube, crd.metadata.name)
    // Report the CRD as it is now (Established), not as the apply first returned it.
    const index = live.findIndex((o) => o.kind === crd.kind && o.metadata.name === crd.metadata.name)
    if (established && index >= 0) live[index] = established
  }
  if (crds.length > 0) kube.forgetDiscovery()

  const placed: KubeObject[] = []
  for (const object of rest) placed.push(await withNamespace(kube, object, owner))
  await inBatches(placed, (o) => kube.apply(o, { dryRun: true }))
  live.push(...(await inBatches(placed, (o) => kube.apply(o))))
  return { inventory: [...first, ...placed].map(entryOf), live }
}

/**
 * The objects as they would be applied (owner labels, namespaces), for comparing with live ones. Kinds must be served
 * already.
 */
export async function placeObjects(kube: Kube, located: readonly Located[], owner: Owner): Promise<KubeObject[]> {
  const placed: KubeObject[] = []
  for (const l of located) placed.push(await withNamespace(kube, labelled(l.object, owner), owner))
  return placed
}

/** Identity of an applied object as kept in status. */
export function entryOf(o: KubeObject): InventoryEntry {
  return {
    apiVersion: o.apiVersion,
    kind: o.kind,
    ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}),
    name: o.metadata.name,
  }
}

function labelled(object: KubeObject, owner: Owner): KubeObject {
  const labels = {
    ...(object.metadata.labels as Record<string, string> | undefined),
    [OWNER_LABELS.name]: owner.name,
    [OWNER_LABELS.namespace]: owner.namespace,
  }
  return { ...object, metadata: { ...object.metadata, labels } }
}

// Namespaced objects without a namespace go to targetNamespace, else the Environment's own.
async function withNamespace(kube: Kube, object: KubeObject, owner: Owner): Promise<KubeObject> {
  const { namespaced } = await kube.resource(object.apiVersion, object.kind)
  if (!namespaced) {
    const metadata = { ...object.metadata }
    delete metadata.namespace
    return { ...object, metadata }
  }
  const namespace = owner.targetNamespace ?? object.metadata.namespace ?? owner.namespace
  return { ...object, metadata: { ...object.metadata, namespace } }
}

/** `action` on every item, PARALLEL at a time; results in item order. */
export async function inBatches<T, R>(items: readonly T[], action: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = []
  for (let i = 0; i < items.length; i += PARALLEL)
    results.push(...(await Promise.all(items.slice(i, i + PARALLEL).map(action))))
  return results
}
