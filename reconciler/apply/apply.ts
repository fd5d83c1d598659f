/**
 * Apply an environment's objects with server-side apply (field manager `berth`, conflicts
 * forced, strict field validation), so that one refusal leaves nothing of the new version:
 *
 * 1. a server-side dry run of every object the apiserver can judge now: Namespaces, CRDs, and
 *    everything else except custom resources of CRDs this version brings and objects in
 *    namespaces it creates (those cannot be judged before their CRD or namespace exists);
 * 2. Namespaces and CRDs for real, waiting until each CRD is Established;
 * 3. a dry run of what had to wait for them;
 * 4. everything else for real, with bounded parallelism.
 *
 * A refusal in step 1 leaves the cluster untouched; one in step 3 leaves only the Namespaces
 * and CRDs of step 2. Every object carries the owner labels that prune checks.
 */
import { InvalidInputError } from '../../shared/errors.ts'
import { type Kube, KubeApiError } from '../../shared/kube.ts'
import { describeObject, groupOf, type KubeObject, type Located, objectKey } from '../../shared/manifests.ts'
import { type InventoryEntry, OWNER_LABELS } from '../../api/environment.ts'
import { waitEstablished } from '../../shared/crds.ts'
import { type Claims, judgeClaims } from './ownership.ts'

export type Owner = {
  name: string
  namespace: string
  targetNamespace?: string | undefined
  /** Environments (`ns/name`) whose objects this one may take over (berth.dev/take-over-from). */
  takeOverFrom?: readonly string[] | undefined
}

const PARALLEL = 8
const FIRST = new Set(['/Namespace', 'apiextensions.k8s.io/CustomResourceDefinition'])

/**
 * What an application left in the cluster: the inventory, each object as the apiserver
 * returned it (status included), and the apiserver's warnings.
 */
export type Applied = { inventory: InventoryEntry[]; live: KubeObject[]; warnings: string[]; claims?: Claims }

type Labelled = { object: KubeObject; source: string }

/** Apply `located` as owned by `owner`; `version` names them in refusals. */
export async function applyObjects(
  kube: Kube,
  located: readonly Located[],
  owner: Owner,
  version: string,
): Promise<Applied> {
  const objects = located.map((l) => ({ object: labelled(l.object, owner), source: l.source }))
  let first = objects.filter((o) => isFirst(o.object))
  const rest = objects.filter((o) => !isFirst(o.object))
  const warnings: string[] = []

  const nothing = `nothing of ${version} was applied`
  // An unknown kind is found out here (discovery), before any dry run: it is refused like any other refusal.
  const split = await splitByReadiness(kube, first, rest, owner).catch((error: unknown) => {
    throw saying(error, nothing)
  })
  // One object, one owner: what another Environment owns is refused, taken over as asked, or let go.
  const existing = [...first, ...split.now]
  const claims = await judgeClaims(kube, existing, await ownerLabelled(kube, existing), owner, version)
  const released = new Set(claims.released.map((r) => objectKey(r.object)))
  const kept = (list: readonly Labelled[]): Labelled[] => list.filter((o) => !released.has(objectKey(o.object)))
  first = kept(first)
  const now = kept(split.now)
  const { later } = split
  await dryRun(kube, [...first, ...now], warnings, nothing)

  const live: KubeObject[] = []
  for (const { object } of first) live.push(await kube.apply(object, { warnings }))
  await establish(kube, first, live)

  const landed = first.map((o) => describeObject(o.object)).join(', ')
  const partly = `of ${version} only ${landed} was applied, so that this could be judged`
  const placedLater = await place(kube, later, owner).catch((error: unknown) => {
    throw saying(error, partly)
  })
  await dryRun(kube, placedLater, warnings, partly)
  const all = [...now, ...placedLater]
  live.push(...(await inParallel(all, ({ object }) => kube.apply(object, { warnings }))))
  const inventory = [...first, ...all].map((o) => entryOf(o.object))
  return { inventory, live, warnings: [...new Set(warnings)], claims }
}

/**
 * The objects as they would be applied (owner labels, namespaces), for comparing with live
 * ones. Kinds must be served already.
 */
export async function placeObjects(kube: Kube, located: readonly Located[], owner: Owner): Promise<KubeObject[]> {
  const placed = await place(
    kube,
    located.map((l) => ({ object: labelled(l.object, owner), source: l.source })),
    owner,
  )
  return placed.map((p) => p.object)
}

/** Identity of an applied object as kept in status. */
export function entryOf(o: KubeObject): InventoryEntry {
  const { apiVersion, kind, metadata } = o
  return { apiVersion, kind, ...(metadata.namespace ? { namespace: metadata.namespace } : {}), name: metadata.name }
}

/**
 * `action` on every item, at most PARALLEL at a time (a pool: the next starts as soon as one
 * ends, not when the slowest of a batch does); results in item order. The first failure rejects,
 * and no further item starts.
 */
export async function inParallel<T, R>(items: readonly T[], action: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length)
  let next = 0
  let failed = false
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const index = next++
      try {
        results[index] = await action(items[index] as T)
      } catch (error: unknown) {
        failed = true
        throw error
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker))
  return results
}

const isFirst = (o: KubeObject): boolean => FIRST.has(`${groupOf(o)}/${o.kind}`)

/**
 * Which of `rest` the apiserver can judge before `first` exists (placed), and which must wait:
 * custom resources of the CRDs in `first`, and objects in a namespace of `first` not there yet.
 */
async function splitByReadiness(
  kube: Kube,
  first: readonly Labelled[],
  rest: readonly Labelled[],
  owner: Owner,
): Promise<{ now: Labelled[]; later: Labelled[] }> {
  const brought = new Set(
    first.filter((o) => o.object.kind === 'CustomResourceDefinition').map((o) => crdKind(o.object)),
  )
  const newNamespaces = new Set<string>()
  for (const { object } of first) {
    if (object.kind !== 'Namespace') continue
    const ref = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: object.metadata.name } }
    // An identity that may not read Namespaces may not create one either: its dry run will say so.
    const exists = await kube.get(ref).catch((error: unknown) => {
      if (error instanceof KubeApiError && error.code === 403) return true
      throw error
    })
    if (!exists) newNamespaces.add(object.metadata.name)
  }
  const now: Labelled[] = []
  const later: Labelled[] = []
  for (const item of rest) {
    if (brought.has(`${groupOf(item.object)}/${item.object.kind}`)) {
      later.push(item)
      continue
    }
    const [placed] = await place(kube, [item], owner)
    if (placed && newNamespaces.has(placed.object.metadata.namespace ?? '')) later.push(item)
    else if (placed) now.push(placed)
  }
  return { now, later }
}

/** `group/Kind` a CRD serves. */
function crdKind(crd: KubeObject): string {
  const spec = crd.spec as { group?: string; names?: { kind?: string } } | undefined
  return `${spec?.group ?? ''}/${spec?.names?.kind ?? ''}`
}

/**
 * Dry-run every object; the first refusal stops the application, naming the object, where it
 * came from, and (`landed`) what of the version is in the cluster at that point.
 */
async function dryRun(kube: Kube, objects: readonly Labelled[], warnings: string[], landed: string): Promise<void> {
  await inParallel(objects, async ({ object, source }) => {
    try {
      await kube.apply(object, { dryRun: true, warnings })
    } catch (error: unknown) {
      throw refusal(object, source, error, landed)
    }
  })
}

// Strict field validation refuses unknown fields with a 500 ("field not declared in schema") for
// built-in kinds and a 422 or 400 for custom resources; all of them mean the object is invalid as written.
const INVALID_FIELD = /field not declared in schema|unknown field|duplicate field|strict decoding error/i

/**
 * The live copies of `objects` that carry berth's owner label, by position (undefined for the
 * rest): one label-selected list per kind and namespace, not a read per object — what a first
 * apply of many Environments pays. A kind this identity may not list is left to the apply to judge.
 */
async function ownerLabelled(kube: Kube, objects: readonly Labelled[]): Promise<Array<KubeObject | undefined>> {
  const scopes = new Map<string, { apiVersion: string; kind: string; namespace: string | undefined }>()
  for (const { object } of objects) {
    const { apiVersion, kind } = object
    const namespace = object.metadata.namespace
    scopes.set(`${apiVersion}|${kind}|${namespace ?? ''}`, { apiVersion, kind, namespace })
  }
  const found = new Map<string, KubeObject>()
  await inParallel([...scopes.values()], async ({ apiVersion, kind, namespace }) => {
    const listed = await kube
      .list<KubeObject>(apiVersion, kind, { ...(namespace ? { namespace } : {}), labelSelector: OWNER_LABELS.name })
      .catch((error: unknown) => {
        // Not served yet (its CRD comes with this version, or discovery is behind): nothing of it exists to own.
        if (error instanceof KubeApiError && (error.code === 403 || error.code === 404)) return []
        throw error
      })
    for (const live of listed) found.set(objectKey(live), live)
  })
  return objects.map(({ object }) => found.get(objectKey(object)))
}

/** An apiserver refusal that also says what of the version landed (as every refusal of a version does). */
function saying(error: unknown, landed: string): unknown {
  if (!(error instanceof KubeApiError)) return error
  return new KubeApiError(error.code, error.reason, `${error.message}; ${landed}`, { cause: error, detail: error.detail })
}

/** A refused dry run as an error that names the object, its file and the apiserver's words. */
function refusal(object: KubeObject, source: string, error: unknown, landed: string): Error {
  if (!(error instanceof KubeApiError)) return error instanceof Error ? error : new Error(String(error))
  const what = `${describeObject(object)} (${source})`
  if (error.code === 422 || error.code === 400 || INVALID_FIELD.test(error.detail)) {
    return new InvalidInputError('Invalid', `${what} is invalid: ${error.detail}; ${landed}`, { cause: error })
  }
  // Any other refusal (Forbidden, NotFound…) keeps the apiserver's reason and its kind.
  return new KubeApiError(error.code, error.reason, `${what}: ${error.detail}; ${landed}`, {
    cause: error,
    detail: error.detail,
  })
}

/** Wait until each CRD of `first` is Established, reporting it as it is then; new kinds need fresh discovery. */
async function establish(kube: Kube, first: readonly Labelled[], live: KubeObject[]): Promise<void> {
  const crds = first.filter((o) => o.object.kind === 'CustomResourceDefinition')
  for (const { object } of crds) {
    const established = await waitEstablished<KubeObject>(kube, object.metadata.name)
    const index = live.findIndex((o) => o.kind === object.kind && o.metadata.name === object.metadata.name)
    if (established && index >= 0) live[index] = established
  }
  if (crds.length > 0) kube.forgetDiscovery()
}

async function place(kube: Kube, items: readonly Labelled[], owner: Owner): Promise<Labelled[]> {
  const placed: Labelled[] = []
  for (const item of items) placed.push({ ...item, object: await withNamespace(kube, item.object, owner) })
  return placed
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
