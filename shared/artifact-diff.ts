/**
 * What one release changes against another, environment by environment: objects added,
 * removed and changed, each change as a unified YAML diff of the object. Secret values never
 * appear: a value is shown as `(unchanged)` on both sides, or as `(value in <version>)` on the
 * side that has it, so a change to a key shows without what it was or became. Pure: it reads
 * the two artifacts' files.
 */
import { structuredPatch } from 'diff'
import { isEncryptedValue, isSopsSecret, SOPS_SOURCE } from './sops.ts'
import { writeYaml } from './yaml-writer.ts'
import { describeObject, groupOf, type KubeObject, objectKey, parseManifests } from './manifests.ts'

export type ChangedObject = { object: string; diff: string }
export type EnvironmentDiff = { environment: string; added: string[]; removed: string[]; changed: ChangedObject[] }
export type Side = { version: string; files: ReadonlyMap<string, Buffer> }

/**
 * The environments (top-level folders with YAML) of either artifact, each with its changes; or
 * only the folder `only` (an Environment's `spec.path` may be nested), none when neither has it.
 */
export function diffArtifacts(from: Side, to: Side, only?: string): EnvironmentDiff[] {
  if (only !== undefined) {
    const prefix = `${only.replace(/\/+$/, '')}/`
    const has = (files: ReadonlyMap<string, Buffer>): boolean => [...files.keys()].some((f) => f.startsWith(prefix))
    return has(from.files) || has(to.files) ? [diffEnvironment(prefix.slice(0, -1), from, to)] : []
  }
  const environments = [...new Set([...folders(from.files), ...folders(to.files)])].sort()
  return environments.map((environment) => diffEnvironment(environment, from, to))
}

/** Whether nothing changed anywhere. */
export const unchanged = (diffs: readonly EnvironmentDiff[]): boolean =>
  diffs.every((d) => d.added.length + d.removed.length + d.changed.length === 0)

/** The human form: a heading per environment, `+`/`-`/`~` per object, each change's diff indented. */
export function formatDiff(diffs: readonly EnvironmentDiff[]): string {
  const lines: string[] = []
  for (const d of diffs) {
    const counts = [`${d.changed.length} changed`, `${d.added.length} added`, `${d.removed.length} removed`]
    lines.push(`${d.environment}: ${unchanged([d]) ? 'no changes' : counts.join(', ')}`)
    for (const object of d.added) lines.push(`  + ${object}`)
    for (const object of d.removed) lines.push(`  - ${object}`)
    for (const change of d.changed) {
      lines.push(`  ~ ${change.object}`)
      for (const line of change.diff.split('\n')) lines.push(`    ${line}`)
    }
  }
  return `${lines.join('\n')}\n`
}

function diffEnvironment(environment: string, from: Side, to: Side): EnvironmentDiff {
  const before = objectsOf(from.files, environment)
  const after = objectsOf(to.files, environment)
  const added = [...after.keys()].filter((k) => !before.has(k))
  const removed = [...before.keys()].filter((k) => !after.has(k))
  const changed: ChangedObject[] = []
  for (const [key, old] of before) {
    const now = after.get(key)
    if (!now) continue
    const [a, b] = isSecret(old) ? maskSecrets(old, now, from.version, to.version) : [old, now]
    const diff = unifiedDiff(writeYaml(a), writeYaml(b), from.version, to.version)
    if (diff) changed.push({ object: describeObject(now), diff })
  }
  const name
    = (map: Map<string, KubeObject>) =>
      (key: string): string =>
        describeObject(map.get(key) ?? {})
  return {
    environment,
    added: added.sort().map(name(after)),
    removed: removed.sort().map(name(before)),
    changed: changed.sort((x, y) => (x.object < y.object ? -1 : x.object > y.object ? 1 : 0)),
  }
}

function folders(files: ReadonlyMap<string, Buffer>): string[] {
  // A dot folder is no environment (.sops holds the SOPS files as they were encrypted).
  return [...files.keys()]
    .filter((f) => f.includes('/') && !f.startsWith('.') && /\.(ya?ml|json)$/.test(f))
    .map((f) => f.split('/')[0] ?? '')
}

/** The objects under `environment/`, by identity (group, kind, namespace, name), in key order. */
function objectsOf(files: ReadonlyMap<string, Buffer>, environment: string): Map<string, KubeObject> {
  const prefix = `${environment}/`
  const objects = new Map<string, KubeObject>()
  const chosen = [...files.keys()].filter((f) => f.startsWith(prefix) && /\.(ya?ml|json)$/.test(f)).sort()
  for (const file of chosen) {
    for (const { object } of parseManifests(files.get(file)?.toString('utf8') ?? '', file)) {
      objects.set(objectKey(object), object)
    }
  }
  return new Map([...objects].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

const isSecret = (o: KubeObject): boolean => o.kind === 'Secret' && groupOf(o) === ''

/** Both sides of a Secret with every value replaced by what may be said of it. */
function maskSecrets(a: KubeObject, b: KubeObject, from: string, to: string): [KubeObject, KubeObject] {
  const masked = (o: KubeObject, other: KubeObject, version: string): KubeObject => {
    const out: KubeObject = { ...o }
    // SOPS: ciphertext says nothing to a reader (and a re-encryption changes it even for the same value).
    if (isSopsSecret(o)) out.sops = '(SOPS metadata)'
    const annotations = o.metadata.annotations as Record<string, string> | undefined
    if (annotations?.[SOPS_SOURCE]) {
      out.metadata = { ...o.metadata, annotations: { ...annotations, [SOPS_SOURCE]: '(encrypted source)' } }
    }
    for (const field of ['data', 'stringData']) {
      const values = o[field] as Record<string, unknown> | undefined
      if (!values || typeof values !== 'object') continue
      const others = (other[field] ?? {}) as Record<string, unknown>
      const said = (k: string, v: unknown): string => {
        if (others[k] === v) return '(unchanged)'
        if (!isEncryptedValue(v)) return `(value in ${version})`
        // The newer side says it changed; the older only that it was encrypted.
        return version === to ? '(encrypted value changed)' : '(encrypted)'
      }
      out[field] = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, said(k, v)]))
    }
    return out
  }
  return [masked(a, b, from), masked(b, a, to)]
}

/** A unified diff (`---`/`+++` headers, hunks with 3 lines of context); empty when the texts are equal. */
export function unifiedDiff(before: string, after: string, from: string, to: string): string {
  if (before === after) return ''
  const patch = structuredPatch(from, to, before, after, undefined, undefined, { context: 3 })
  const lines = [`--- ${from}`, `+++ ${to}`]
  for (const hunk of patch.hunks) {
    lines.push(`@@ -${hunk.oldStart},${hunk.oldLines} +${hunk.newStart},${hunk.newLines} @@`)
    lines.push(...hunk.lines)
  }
  return lines.join('\n')
}
