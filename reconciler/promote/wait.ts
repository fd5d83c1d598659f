/**
 * Waiting on Environments by watching them, as `kubectl wait` and `kubectl get -w` do: one list,
 * then a watch from its resourceVersion, so no change between the two is missed and nothing is
 * polled. Used by `promote --wait`, `rollback --wait`, `reconcile --wait` and `status --watch`.
 */
import { API_VERSION, type Environment, KIND } from '../../api/environment.ts'
import { BerthError, UsageError } from '../../shared/errors.ts'
import { type Kube, KubeApiError } from '../../shared/kube.ts'
import { readyOf, settled } from '../pass/status.ts'

export type Scope = { namespace?: string | undefined; name?: string | undefined }

/**
 * Call `seen` with the Environments in scope now, and again after every change, until `seen`
 * returns a value other than undefined (that value is returned) or `signal` aborts (undefined).
 * Watches end and are resumed from their resourceVersion; a 410 Gone lists again.
 */
export async function watchEnvironments<R>(
  kube: Kube,
  scope: Scope,
  seen: (environments: readonly Environment[]) => R | undefined,
  signal: AbortSignal,
): Promise<R | undefined> {
  const selector = scope.name ? { fieldSelector: `metadata.name=${scope.name}` } : {}
  const where = { namespace: scope.namespace, ...selector }
  while (!signal.aborted) {
    const listed = await kube.listAt<Environment>(API_VERSION, KIND, where)
    const current = new Map(listed.items.map((e) => [`${e.metadata.namespace}/${e.metadata.name}`, e]))
    const verdict = seen([...current.values()])
    if (verdict !== undefined) return verdict
    let resourceVersion = listed.resourceVersion
    let result: R | undefined
    const stop = new AbortController()
    const ended = (): void => stop.abort()
    signal.addEventListener('abort', ended, { once: true })
    try {
      for (;;) {
        resourceVersion = await kube.watchFrom<Environment>(
          API_VERSION,
          KIND,
          { ...where, resourceVersion, timeoutSeconds: 60, signal: stop.signal },
          (type, env) => {
            const key = `${env.metadata.namespace}/${env.metadata.name}`
            if (type === 'DELETED') current.delete(key)
            else current.set(key, env)
            result = seen([...current.values()])
            if (result !== undefined) stop.abort()
          },
        )
      }
    } catch (error: unknown) {
      if (result !== undefined) return result
      if (stop.signal.aborted) return undefined
      // 410 Gone: the watch fell too far behind; list again from now.
      if (!(error instanceof KubeApiError && error.code === 410)) throw error
    } finally {
      signal.removeEventListener('abort', ended)
    }
  }
  return undefined
}

/** What a pass says while it works: Ready's reason and message (the phase, a rollout's N of M). */
export function progressOf(env: Environment): string {
  const ready = readyOf(env)
  return ready.reason ? `${ready.reason}: ${ready.message}` : 'waiting for the reconciler'
}

/**
 * Wait until the reconciler has handled generation `generation` of Environment `name`: Ready →
 * the Environment; a terminal failure → its reason and message as an error; `timeoutMs` → Timeout.
 * `progress` hears each new state on the way (which phase, how far a rollout is).
 */
export async function waitForOutcome(
  kube: Kube,
  target: { namespace: string; name: string; generation: number },
  options: {
    timeoutMs: number
    done?: (env: Environment) => boolean
    progress?: (line: string) => void
  },
): Promise<Environment> {
  const { namespace, name, generation } = target
  let last = ''
  let latest: Environment | undefined
  const timeout = AbortSignal.timeout(options.timeoutMs)
  const outcome = await watchEnvironments(
    kube,
    { namespace, name },
    (environments) => {
      const env = environments[0]
      if (!env) return new UsageError('NotFound', `environment ${namespace}/${name} was deleted while waiting`)
      latest = env
      const state = options.done && !options.done(env) ? 'pending' : settled(env, generation)
      if (state === 'ready') return env
      if (state !== 'pending') return new BerthError(state.failed.reason, `${namespace}/${name}: ${state.failed.message}`)
      const picked = (env.status?.observedGeneration ?? 0) >= generation
      const line = picked ? progressOf(env) : `waiting for the reconciler to take generation ${generation}`
      if (line !== last) options.progress?.(`${namespace}/${name}: ${line}`)
      last = line
      return undefined
    },
    timeout,
  )
  if (outcome instanceof Error) throw outcome
  if (outcome) return outcome
  const seconds = options.timeoutMs / 1000
  const said = latest ? readyOf(latest).message : ''
  throw new BerthError('Timeout', `${namespace}/${name} not Ready after ${seconds} s: ${said || 'no verdict yet'}`)
}
