/**
 * What promoting an Environment to a version would change, computed server-side and
 * changing nothing: objects created, changed (with the fields), and pruned. The artifact is
 * read as the reconciler reads it (source.ts), registry credentials from `spec.source.secretRef`
 * included, unless the caller brings its own.
 */
import type { Kube } from '../shared/kube.ts'
import type { OrasOptions } from '../shared/oras.ts'
import { type Environment, specSchema } from './api.ts'
import { entryOf, placeObjects } from './apply.ts'
import { findDrift } from './drift.ts'
import { describeEntry, entryKey } from './prune.ts'
import { resolve } from './resolve.ts'
import { loadObjects, openSource } from './source.ts'

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
  pin: { version: string; digest?: string | undefined },
  access: OrasOptions,
  cacheDir: string,
): Promise<Plan> {
  const spec = specSchema.parse(env.spec)
  const source = await openSource(kube, env.metadata.namespace, spec, access)
  try {
    const resolved = await resolve(source.repository, pin.version, pin.digest, source.access)
    const located = await loadObjects(source, resolved, spec.path ?? env.metadata.name, cacheDir)
    const owner = { name: env.metadata.name, namespace: env.metadata.namespace, targetNamespace: spec.targetNamespace }
    const objects = await placeObjects(kube, located, owner)
    // The drift check's reads and dry runs against the pin to be: missing objects are created, differing ones change.
    const { drift } = await findDrift(kube, objects)
    const next = new Set(objects.map((o) => entryKey(entryOf(o))))
    const inventory = env.status?.inventory ?? []
    return {
      version: resolved.version,
      digest: resolved.digest,
      created: drift.filter((d) => d.missing).map((d) => d.object),
      changed: drift.filter((d) => !d.missing).map(({ object, fields }) => ({ object, fields })),
      pruned: spec.prune ? inventory.filter((e) => !next.has(entryKey(e))).map(describeEntry) : [],
    }
  } finally {
    await source.close()
  }
}
