/**
 * What promoting an Environment to a version would change, computed server-side and
 * changing nothing: objects created, changed (with the fields), and pruned.
 */
import type { Kube } from '../shared/kube.ts'
import type { RegistryAccess } from '../shared/oras.ts'
import { type Environment, sourceOf, specSchema } from './api.ts'
import { entryOf, placeObjects } from './apply.ts'
import { findDrift } from './drift.ts'
import { fetchArtifact } from './fetch.ts'
import { describeEntry, entryKey } from './prune.ts'
import { selectObjects } from './reconcile.ts'
import { resolve } from './resolve.ts'

export type Plan = {
  version: string
  digest: string
  created: string[]
  changed: Array<{ object: string; fields: string[] }>
  pruned: string[]
}

export async function planPromotion(
  kube: Kube,
  env: Environment,
  version: string,
  digest: string | undefined,
  access: RegistryAccess,
  cacheDir: string,
): Promise<Plan> {
  const spec = specSchema.parse(env.spec)
  const { repository, access: registry } = sourceOf(spec, access)
  const resolved = await resolve(repository, version, digest, registry)
  const files = await fetchArtifact(repository, resolved, registry, cacheDir)
  const owner = { name: env.metadata.name, namespace: env.metadata.namespace, targetNamespace: spec.targetNamespace }
  const objects = await placeObjects(kube, selectObjects(files, spec.path ?? env.metadata.name), owner)
  // The drift check's reads and dry runs against the pin to be: missing objects are created, differing ones change.
  const { drift } = await findDrift(kube, objects)
  const next = new Set(objects.map((o) => entryKey(entryOf(o))))
  const pruned = spec.prune
    ? (env.status?.inventory ?? []).filter((e) => !next.has(entryKey(e))).map(describeEntry)
    : []
  return {
    version: resolved.version,
    digest: resolved.digest,
    created: drift.filter((d) => d.missing).map((d) => d.object),
    changed: drift.filter((d) => !d.missing).map(({ object, fields }) => ({ object, fields })),
    pruned,
  }
}
