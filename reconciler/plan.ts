/**
 * What promoting an Environment to a version would change, computed server-side and
 * changing nothing: objects created, changed (with the fields), and pruned.
 */
import type { Kube } from '../shared/kube.ts'
import type { RegistryAccess } from '../shared/oras.ts'
import { type Environment, sourceOf, specSchema } from './api.ts'
import { placeObjects } from './apply.ts'
import { comparable, diffPaths } from './drift.ts'
import { describeObject } from '../shared/manifests.ts'
import { fetchArtifact } from './fetch.ts'
import { entryKey } from './prune.ts'
import { selectObjects } from './reconcile.ts'
import { resolve } from './resolve.ts'

export type Plan = { version: string; digest: string; created: string[]; changed: Array<{ object: string; fields: string[] }>; pruned: string[] }

export async function planPromotion(kube: Kube, env: Environment, version: string, digest: string | undefined, access: RegistryAccess, cacheDir: string): Promise<Plan> {
  const spec = specSchema.parse(env.spec)
  const { repository, access: registry } = sourceOf(spec, access)
  const resolved = await resolve(repository, version, digest, registry)
  const files = await fetchArtifact(repository, resolved, registry, cacheDir)
  const owner = { name: env.metadata.name, namespace: env.metadata.namespace, targetNamespace: spec.targetNamespace }
  const objects = await placeObjects(kube, selectObjects(files, spec.path ?? env.metadata.name), owner)
  const plan: Plan = { version: resolved.version, digest: resolved.digest, created: [], changed: [], pruned: [] }
  for (const object of objects) {
    const name = describeObject(object)
    const metadata = { name: object.metadata.name, ...(object.metadata.namespace ? { namespace: object.metadata.namespace } : {}) }
    const live = await kube.get<Record<string, unknown>>({ apiVersion: object.apiVersion, kind: object.kind, metadata })
    if (!live) {
      plan.created.push(name)
      continue
    }
    const fields = diffPaths(comparable(await kube.apply<Record<string, unknown>>(object, { dryRun: true })), comparable(live), '')
    if (fields.length > 0) plan.changed.push({ object: name, fields })
  }
  const next = new Set(objects.map((o) => entryKey({ apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name, ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}) })))
  if (spec.prune) {
    for (const e of env.status?.inventory ?? []) if (!next.has(entryKey(e))) plan.pruned.push(`${e.kind} ${e.namespace ? `${e.namespace}/` : ''}${e.name}`)
  }
  return plan
}
