/**
 * `spec.dependsOn`: the Environments of the same namespace that must be Ready on their current version before a new
 * version lands here, and the cycles that could never let one land. Dependencies are read as the controller's watch
 * delivered them when it has them (no request per pass), else from the apiserver.
 */
import { InvalidInputError, WaitingError } from '../../shared/errors.ts'
import { type Environment, environmentRef } from '../../api/environment.ts'
import { readyCondition } from './status.ts'
import type { Pass } from './pass.ts'

/** How soon a dependency is looked at again; the controller also re-queues dependents as soon as it turns Ready. */
export const DEPENDENCY_RETRY_MS = 10_000

/**
 * Why this pass may not apply a new version yet (DependencyNotReady), or undefined. A cycle through this Environment
 * is refused (InvalidSpec) whether or not a new version waits.
 */
export async function dependencyWait(
  pass: Pass,
  names: readonly string[],
  newVersion: boolean,
): Promise<WaitingError | undefined> {
  const { namespace, name } = pass.env.metadata
  const read = lookup(pass)
  const cycle = await cycleThrough(name, names, read)
  if (cycle) {
    throw new InvalidInputError(
      'InvalidSpec',
      `spec.dependsOn: ${cycle.join(' → ')} is a cycle: none of them could ever apply a new version. Remove one edge`,
    )
  }
  if (!newVersion) return undefined
  for (const dependency of names) {
    const env = await read(dependency)
    const why = env ? notReady(env) : 'does not exist'
    if (why) {
      return new WaitingError(
        'DependencyNotReady',
        `dependsOn: ${namespace}/${dependency} ${why}; nothing of the new version is applied until it is Ready`,
        DEPENDENCY_RETRY_MS,
      )
    }
  }
  return undefined
}

/** Why `env` is not Ready on its current version, or undefined when it is. */
function notReady(env: Environment): string | undefined {
  const ready = readyCondition(env.status)
  if (ready?.status !== 'True') return `is not Ready${ready ? ` (${ready.reason}: ${ready.message})` : ' yet'}`
  if ((env.status?.observedGeneration ?? 0) < (env.metadata.generation ?? 0)) return 'has a change not handled yet'
  return undefined
}

/** A path from `start` through dependencies back to it, if there is one: [start, …, start]. */
async function cycleThrough(
  start: string,
  first: readonly string[],
  read: (name: string) => Promise<Environment | undefined>,
): Promise<string[] | undefined> {
  const seen = new Set<string>()
  const walk = async (name: string, path: string[]): Promise<string[] | undefined> => {
    if (name === start) return [...path, name]
    if (seen.has(name)) return undefined
    seen.add(name)
    for (const next of dependsOnOf(await read(name))) {
      const found = await walk(next, [...path, name])
      if (found) return found
    }
    return undefined
  }
  for (const name of first) {
    const found = await walk(name, [start])
    if (found) return found
  }
  return undefined
}

/** The names an Environment's spec depends on, read loosely: its own pass validates it. */
export function dependsOnOf(env: Environment | undefined): string[] {
  const list = (env?.spec as { dependsOn?: unknown } | undefined)?.dependsOn
  if (!Array.isArray(list)) return []
  return list.flatMap((d: unknown) => {
    const name = (d as { name?: unknown } | null)?.name
    return typeof name === 'string' ? [name] : []
  })
}

function lookup(pass: Pass): (name: string) => Promise<Environment | undefined> {
  const { namespace } = pass.env.metadata
  return async (name) =>
    pass.ctx.peer?.(namespace, name) ?? (await pass.ctx.kube.get<Environment>(environmentRef(namespace, name)))
}
