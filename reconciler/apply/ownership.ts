/**
 * One object, one owner. An object another Environment owns is never taken over silently. Owns
 * means berth's own record says so — the object carries that Environment's owner labels *and* is
 * in its status.inventory, which only the reconciler writes: labels alone are tenant-writable, so
 * labels naming an Environment that does not exist or does not list the object are nobody's claim.
 * Such an object is applying it is refused (OwnershipConflict), nothing of the version
 * applied. Taking over is explicit — the taking Environment names the one it takes from in its
 * `berth.dev/take-over-from` annotation — and then the previous owner lets go: it neither
 * applies, corrects back nor prunes what was taken (the object is "released" to the taker).
 */
import { environmentRef, type Environment } from '../../api/environment.ts'
import { OWNER_LABELS, TAKE_OVER_FROM } from '../../api/well-known.ts'
import { InvalidInputError } from '../../shared/errors.ts'
import type { Kube } from '../../shared/kube.ts'
import { describeObject, type KubeObject, objectKey } from '../../shared/manifests.ts'

export type Claimant = { name: string; namespace: string; takeOverFrom?: readonly string[] | undefined }

/** The Environments an annotation value names (`ns/name`, comma-separated). */
export function takeOverList(value: string | undefined): string[] {
  return (value ?? '').split(',').map((s) => s.trim()).filter(Boolean)
}

/** `ns/name` of the Environment whose labels `live` carries, when that is not `me`. */
export function otherOwner(live: KubeObject | undefined, me: Claimant): string | undefined {
  const labels = live?.metadata.labels as Record<string, string> | undefined
  const name = labels?.[OWNER_LABELS.name]
  const namespace = labels?.[OWNER_LABELS.namespace]
  if (!name || !namespace || (name === me.name && namespace === me.namespace)) return undefined
  return `${namespace}/${name}`
}

/** Whether `env`'s own record (status.inventory) holds `object`. */
function lists(env: Environment | undefined, object: KubeObject): boolean {
  const key = objectKey(object)
  return (env?.status?.inventory ?? []).some((e) => {
    const metadata = { name: e.name, ...(e.namespace ? { namespace: e.namespace } : {}) }
    return objectKey({ apiVersion: e.apiVersion, kind: e.kind, metadata }) === key
  })
}

/** Environment `other` (`ns/name`); undefined when gone, or when this identity may not read Environments. */
async function readEnvironment(kube: Kube, other: string): Promise<Environment | undefined> {
  const [namespace = '', name = ''] = other.split('/')
  return await kube.get<Environment>(environmentRef(namespace, name)).catch(() => undefined)
}

/** Whether `env` has taken over from `me` (its take-over-from names me). */
function takesOverFrom(env: Environment | undefined, me: Claimant): boolean {
  return takeOverList(env?.metadata.annotations?.[TAKE_OVER_FROM]).includes(`${me.namespace}/${me.name}`)
}

/** The Environment (`ns/name`) `live` was let go to: it carries its labels and it took over from `me`. */
export async function releasedTo(kube: Kube, live: KubeObject | undefined, me: Claimant): Promise<string | undefined> {
  const other = otherOwner(live, me)
  if (!other || me.takeOverFrom?.includes(other)) return undefined
  return takesOverFrom(await readEnvironment(kube, other), me) ? other : undefined
}

export type Claims = {
  /** Objects another Environment took from this one: not applied, not corrected, not pruned. */
  released: Array<{ object: KubeObject; to: string }>
  /** Objects this Environment takes over, as its annotation asks: applied, and said in an Event. */
  taken: Array<{ object: KubeObject; from: string }>
}

/**
 * Judge who may apply each of `objects` (live copies in `live`, by position; undefined when the
 * object does not exist). Throws OwnershipConflict, naming every object and its owner, when any
 * belongs to another Environment that neither gave it up nor is named in take-over-from.
 */
export async function judgeClaims(
  kube: Kube,
  objects: ReadonlyArray<{ object: KubeObject; source: string }>,
  live: ReadonlyArray<KubeObject | undefined>,
  me: Claimant,
  version: string,
): Promise<Claims> {
  const claims: Claims = { released: [], taken: [] }
  const conflicts: string[] = []
  // Each owner read once per judgement; an identity that may not read Environments sees no owner and no take-over.
  const environments = new Map<string, Promise<Environment | undefined>>()
  const environment = (other: string): Promise<Environment | undefined> => {
    const found = environments.get(other) ?? readEnvironment(kube, other)
    environments.set(other, found)
    return found
  }
  for (const [i, { object, source }] of objects.entries()) {
    const other = otherOwner(live[i], me)
    if (!other) continue
    const owner = await environment(other)
    if (takesOverFrom(owner, me)) {
      claims.released.push({ object, to: other })
    } else if (!lists(owner, object)) {
      continue // Labels without the record behind them: nobody's claim, applied as this Environment's.
    } else if (me.takeOverFrom?.includes(other)) {
      claims.taken.push({ object, from: other })
    } else {
      conflicts.push(`${describeObject(object)} (${source}) belongs to Environment ${other}`)
    }
  }
  if (conflicts.length > 0) {
    throw new InvalidInputError(
      'OwnershipConflict',
      `${conflicts.join('; ')}: one object has one owner, so nothing of ${version} was applied. To take it over `
      + `deliberately, annotate this Environment ${TAKE_OVER_FROM}=<namespace>/<name> of its owner`,
    )
  }
  return claims
}
