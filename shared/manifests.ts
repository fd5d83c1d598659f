/**
 * Kubernetes manifests as berth handles them on both sides: parsing YAML streams into
 * objects, the checks every object must pass before it is packed or applied, and the
 * identity (`group/kind/namespace/name`) that finds duplicates and names files.
 */
import * as jsYaml from 'js-yaml'
import { InvalidInputError } from './errors.ts'
import { objectNameProblems } from './names.ts'
import { KUBECTL_SCHEMA, unsendable } from './kubectl-yaml.ts'
import { writeYaml } from './yaml-writer.ts'
import { isSopsSecret, sopsSecretProblems } from './sops.ts'

const { loadAll, YAMLException } = jsYaml
/**
 * What a manifest's plain scalars mean: exactly what they mean to kubectl (go-yaml v2's YAML 1.1
 * rules, kubectl-yaml.ts), merge keys included. No timestamps: kubectl sends `2024-01-01` as that
 * string.
 */
const MANIFEST_SCHEMA = KUBECTL_SCHEMA

export type KubeObject = {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace?: string; [key: string]: unknown }
  [key: string]: unknown
}

/** Where a document came from, for error messages: `dev/deploy.yaml#2`. */
export type Located = { object: KubeObject; source: string }

/**
 * Parse a YAML stream. Empty documents are skipped; `*List` kinds are unwrapped. Every
 * problem is reported with its location (`file#document` or, for syntax, `file:line:column`).
 *
 * js-yaml rather than the `yaml` package here: on rendered manifests it parses about five times
 * faster (js-yaml 4 also ~40 % faster than 5), and packaging thousands of objects spends most of
 * its time here.
 */
export function parseManifests(text: string, source: string): Located[] {
  const out: Located[] = []
  const problems: string[] = []
  let documents: unknown[]
  try {
    documents = loadAll(text, null, { schema: MANIFEST_SCHEMA })
  } catch (error: unknown) {
    throw yamlError(text, source, error)
  }
  documents.forEach((value, index) => {
    const where = `${source}#${index + 1}`
    if (value === null || value === undefined) return
    const odd = unsendable(value)
    if (odd) {
      problems.push(
        `${where}: ${odd.path}: ${String(odd.value)} is a number kubectl cannot send (JSON has no such value, or not `
        + 'exactly); quote it if a string is meant',
      )
      return
    }
    for (const item of unwrapList(value)) {
      const problem = objectProblem(item)
      if (problem) problems.push(`${where}: ${problem}`)
      else out.push({ object: item as KubeObject, source: where })
    }
  })
  if (problems.length > 0) throw new InvalidInputError('InvalidManifest', problems.join('\n'))
  return out
}

/**
 * A YAML error with its place. A field given twice is refused with reason `Invalid`, as the
 * apiserver's strict field validation names it, since which of the two values was meant is
 * anybody's guess.
 */
function yamlError(text: string, source: string, error: unknown): InvalidInputError {
  if (!(error instanceof YAMLException)) {
    return new InvalidInputError('InvalidManifest', `${source}: not valid YAML: ${String(error)}`, { cause: error })
  }
  const { mark } = error as { mark?: { line: number; column: number } }
  const where = mark ? `${source}:${mark.line + 1}:${mark.column + 1}` : source
  if (mark && error.reason === 'duplicated mapping key') {
    const line = text.split('\n')[mark.line] ?? ''
    const field = /^["']?([^"':]+)/.exec(line.slice(mark.column))?.[1]?.trim()
    const named = field ? ` "${field}"` : ''
    return new InvalidInputError('Invalid', `${where}: duplicate field${named}: a field may appear once per object`, {
      cause: error,
    })
  }
  return new InvalidInputError('InvalidManifest', `${where}: not valid YAML: ${error.reason}`, { cause: error })
}

function unwrapList(value: unknown): unknown[] {
  if (isRecord(value) && typeof value.kind === 'string' && value.kind.endsWith('List') && Array.isArray(value.items))
    return value.items as unknown[]
  return [value]
}

function objectProblem(value: unknown): string | undefined {
  if (!isRecord(value)) return 'not a Kubernetes object (expected a mapping with apiVersion, kind and metadata.name)'
  const missing: string[] = []
  if (typeof value.apiVersion !== 'string' || value.apiVersion === '') missing.push('apiVersion')
  if (typeof value.kind !== 'string' || value.kind === '') missing.push('kind')
  const metadata = value.metadata
  if (!isRecord(metadata) || typeof metadata.name !== 'string' || metadata.name === '') missing.push('metadata.name')
  if (missing.length > 0)
    return `${typeof value.kind === 'string' && value.kind ? value.kind : 'object'} has no ${missing.join(', ')}`
  if (isRecord(metadata) && metadata.namespace !== undefined && typeof metadata.namespace !== 'string')
    return 'metadata.namespace must be a string'
  const names = objectNameProblems(value as KubeObject)
  return names.length > 0 ? `${String(value.kind)}: ${names.join('; ')}` : undefined
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** API group of an object (`apps`, `` for core). */
export function groupOf(object: Pick<KubeObject, 'apiVersion'>): string {
  const slash = object.apiVersion.indexOf('/')
  return slash < 0 ? '' : object.apiVersion.slice(0, slash)
}

/** Identity of an object regardless of API version: `group/Kind/namespace/name`. */
export function objectKey(object: KubeObject): string {
  return `${groupOf(object)}/${object.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name}`
}

/** Human form: `Deployment web/api`, `ClusterRole reader`; the one formatter for objects, references and entries. */
export function describeObject(object: { kind?: string; metadata?: { name?: string; namespace?: string } }): string {
  const ns = object.metadata?.namespace ? `${object.metadata.namespace}/` : ''
  return `${object.kind ?? 'object'} ${ns}${object.metadata?.name ?? '?'}`
}

export type CheckOptions = { allowSecrets?: boolean }

/**
 * Checks across a set of objects that will be applied together: no object twice, and no
 * Secret carrying literal data unless allowed. All problems are reported at once.
 */
export function checkObjects(objects: readonly Located[], options: CheckOptions = {}): void {
  const problems: string[] = []
  const seen = new Map<string, string>()
  for (const { object, source } of objects) {
    const key = objectKey(object)
    const first = seen.get(key)
    if (first) problems.push(`${source}: ${describeObject(object)} is defined twice (first at ${first}); keep one`)
    else seen.set(key, source)
    if (isSopsSecret(object)) {
      // Kept encrypted: accepted without --allow-secrets, but only whole. A value left in clear beside encrypted ones
      // would reach the registry in clear.
      const why = sopsSecretProblems(object)
      if (why.length > 0) problems.push(`${source}: ${describeObject(object)} is not wholly SOPS-encrypted: ${why.join('; ')}`)
      continue
    }
    if (!options.allowSecrets && isLiteralSecret(object)) {
      problems.push(
        `${source}: ${describeObject(object)} carries literal data; artifacts are readable by anyone who can pull them. `
        + 'Keep secrets out (SealedSecrets, External Secrets, SOPS) or pass --allow-secrets',
      )
    }
  }
  if (problems.length > 0) throw new InvalidInputError('InvalidManifest', problems.join('\n'))
}

function isLiteralSecret(object: KubeObject): boolean {
  if (object.kind !== 'Secret' || groupOf(object) !== '') return false
  const filled = (v: unknown): boolean => isRecord(v) && Object.keys(v).length > 0
  return filled(object.data) || filled(object.stringData)
}

/** Serialize one object as YAML, the same way every time: keys in source order, no folding, no anchors. */
export function toYaml(object: KubeObject): string {
  return writeYaml(object)
}
