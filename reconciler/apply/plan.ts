/**
 * What promoting an Environment to a version would change, computed server-side and
 * changing nothing: objects created, changed (with the fields), and pruned. The artifact is
 * read as the reconciler reads it (source.ts), registry credentials from `spec.source.secretRef`
 * included, unless the caller brings its own.
 */
import { diffArtifacts, type EnvironmentDiff } from '../../shared/artifact-diff.ts'
import type { Kube } from '../../shared/kube.ts'
import type { OrasOptions } from '../../shared/oras.ts'
import { type Environment, specSchema } from '../../api/environment.ts'
import { entryOf, placeObjects } from './apply.ts'
import { findDrift } from './drift.ts'
import { describeEntry, entryKey } from './prune.ts'
import { fetchArtifact } from '../source/fetch.ts'
import { resolve, type Resolved, resolveDigest } from '../source/resolve.ts'
import { loadObjects, openSource, type Source } from '../source/source.ts'

export type Plan = {
  version: string
  digest: string
  /** The artifact-to-artifact change of this Environment's folder, from what runs now; absent when nothing ran yet. */
  diff?: EnvironmentDiff
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
    const path = spec.path ?? env.metadata.name
    const located = await loadObjects(source, resolved, path, cacheDir)
    const diff = await artifactDiff(source, env, resolved, path, cacheDir)
    const owner = { name: env.metadata.name, namespace: env.metadata.namespace, targetNamespace: spec.targetNamespace }
    const objects = await placeObjects(kube, located, owner)
    // The drift check's reads and dry runs against the pin to be: missing objects are created, differing ones change.
    const { drift } = await findDrift(kube, objects)
    const next = new Set(objects.map((o) => entryKey(entryOf(o))))
    const inventory = env.status?.inventory ?? []
    return {
      version: resolved.version,
      digest: resolved.digest,
      ...(diff ? { diff } : {}),
      created: drift.filter((d) => d.missing).map((d) => d.object),
      changed: drift.filter((d) => !d.missing).map(({ object, fields }) => ({ object, fields })),
      pruned: spec.prune ? inventory.filter((e) => !next.has(entryKey(e))).map(describeEntry) : [],
    }
  } finally {
    await source.close()
  }
}

/** What the artifact of `target` changes in `path` against the one the Environment runs now. */
async function artifactDiff(
  source: Source,
  env: Environment,
  target: Resolved,
  path: string,
  cacheDir: string,
): Promise<EnvironmentDiff | undefined> {
  const { lastAppliedVersion: version, lastAppliedDigest: digest } = env.status ?? {}
  if (!version || !digest) return undefined
  const running = await resolveDigest(source.repository, version, digest, source.access)
  const [before, after] = await Promise.all([
    fetchArtifact(source.repository, running, source.access, cacheDir),
    fetchArtifact(source.repository, target, source.access, cacheDir),
  ])
  return diffArtifacts({ version, files: before }, { version: target.version, files: after }, path)[0]
}
