/** Status bookkeeping for Environments: kstatus-style conditions and the bounded history. */
import {
  type Condition,
  type Environment,
  type EnvironmentStatus,
  type HistoryEntry,
  STATUS_FIELDS,
} from '../../api/environment.ts'

const HISTORY = 10

/**
 * Set a condition, keeping its lastTransitionTime while its status does not change. Give it the
 * generation it was decided for (`observedGeneration`), as kstatus and Flux expect of every condition.
 */
export function setCondition(
  status: Pick<EnvironmentStatus, 'conditions'>,
  condition: Omit<Condition, 'lastTransitionTime'>,
  now: Date,
): void {
  const conditions = status.conditions ?? []
  const previous = conditions.find((c) => c.type === condition.type)
  const lastTransitionTime
    = previous && previous.status === condition.status
      ? previous.lastTransitionTime
      : now.toISOString().replace(/\.\d{3}Z$/, 'Z')
  status.conditions = [...conditions.filter((c) => c.type !== condition.type), { ...condition, lastTransitionTime }]
}

export function removeCondition(status: EnvironmentStatus, type: string): void {
  if (status.conditions) status.conditions = status.conditions.filter((c) => c.type !== type)
}

/**
 * Record an application: one row per attempt and outcome; a pass that repeats the last row's digest and result only
 * updates its finish time.
 */
export function recordHistory(
  status: EnvironmentStatus,
  given: Omit<HistoryEntry, 'by'> & { by?: string | undefined },
): void {
  const { by, ...rest } = given
  const entry: HistoryEntry = by === undefined ? rest : { ...rest, by }
  const history = status.history ?? []
  const last = history.at(-1)
  // "Progressing" is not a result yet: the attempt's outcome (or its next check) replaces it.
  if (last && last.digest === entry.digest && last.result === 'Progressing') {
    Object.assign(
      last,
      { finished: entry.finished, result: entry.result },
      entry.by === undefined ? {} : { by: entry.by },
      entry.check === undefined ? {} : { check: entry.check },
    )
    status.history = history
    return
  }
  // The same outcome again (a periodic pass) is the same application: its row stays as it is, so a pass
  // that changes nothing writes nothing.
  if (last && last.digest === entry.digest && last.result === entry.result) return
  // Another version applied while this one was still on its way (a new pin mid-wait): this one never got a result.
  if (last?.result === 'Progressing' && !HELD_RESULTS.has(entry.result)) {
    Object.assign(last, { result: 'Superseded', finished: entry.started })
  }
  status.history = [...history, entry].slice(-HISTORY)
}

/** When the current digest was first attempted: the start of the health timeout. */
export function firstAttemptOf(status: EnvironmentStatus, digest: string): string | undefined {
  const history = status.history ?? []
  let since: string | undefined
  // Rows of a version held by policy are no attempt: its health timeout starts when it is applied.
  for (let i = history.length - 1; i >= 0 && history[i]?.digest === digest; i--)
    if (!HELD_RESULTS.has(history[i]?.result ?? '')) since = history[i]?.started
  return since
}

/** History results of a new version held by promotion policy (policy.ts). */
export const HELD_RESULTS = new Set(['Frozen', 'OutsideWindow', 'AwaitingApproval'])

export type ReadyText = { status: string; reason: string; message: string }

/** The Ready condition of `status`, when a pass has set one. */
export function readyCondition(status: Pick<EnvironmentStatus, 'conditions'> | undefined): Condition | undefined {
  return status?.conditions?.find((c) => c.type === 'Ready')
}

/** The Ready condition as `berth status` shows it; Unknown before the first pass. */
export function readyOf(env: Environment): ReadyText {
  const c = readyCondition(env.status)
  return { status: c?.status ?? 'Unknown', reason: c?.reason ?? '', message: c?.message ?? '' }
}

/**
 * Where a change made at `generation` stands: not yet handled, Ready, still rolling out, or
 * failed with the Ready reason (what `promote --wait` exits on).
 */
/** The gate's message while only the soak holds a version (gate.ts soaked()). */
const SOAKING = /^promotion gate: healthy on \S+ for \S+ of \S+/

export function settled(env: Environment, generation: number): 'pending' | 'ready' | { failed: ReadyText } {
  if ((env.status?.observedGeneration ?? 0) < generation) return 'pending'
  const ready = readyOf(env)
  if (ready.status === 'True') return 'ready'
  if (ready.reason === 'Progressing' || ready.reason === '') return 'pending'
  // Held only until the upstream has been healthy for `soak`: that comes by itself, so a wait goes on.
  if (ready.reason === 'PromotionBlocked' && SOAKING.test(ready.message)) return 'pending'
  // Waiting on another Environment's rollout (dependsOn) ends by itself too, or at the wait's own timeout.
  if (ready.reason === 'DependencyNotReady') return 'pending'
  return { failed: ready }
}

/** A status with kstatus conditions: an Environment's, an EnvironmentSet's. */
type WithConditions = { conditions?: ReadonlyArray<{ type: string }> | undefined }

/** Whether two statuses say the same (conditions compared by type, whatever their order). */
export function sameStatus<S extends WithConditions>(a: S | undefined, b: S | undefined): boolean {
  return canonical(a) === canonical(b)
}

function canonical(status: WithConditions | undefined): string {
  if (!status) return ''
  const conditions = [...(status.conditions ?? [])].sort((x, y) => (x.type < y.type ? -1 : 1))
  return JSON.stringify({ ...status, conditions }, (_key, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([x], [y]) => (x < y ? -1 : 1)))
      : value,
  )
}

/**
 * The JSON merge patch that turns `before` into `after`: what `after` says, and `null` for every
 * field it no longer has (a merge patch that leaves a key out keeps it). Every status field the
 * schema knows is nulled when absent, so a field the copy in hand lacked is removed all the same.
 */
export function statusPatch<S extends object>(
  before: S | undefined,
  after: S,
  fields: ReadonlyArray<keyof S> = STATUS_FIELDS as ReadonlyArray<keyof S>,
): Record<string, unknown> {
  const patch = mergePatch(before ?? {}, after) as Record<string, unknown>
  for (const field of fields) if (after[field] === undefined) patch[String(field)] = null
  return patch
}

function mergePatch(before: unknown, after: unknown): unknown {
  if (!isPlainObject(before) || !isPlainObject(after)) return after
  const patch: Record<string, unknown> = {}
  for (const key of Object.keys(before)) if (after[key] === undefined) patch[key] = null
  for (const [key, value] of Object.entries(after)) {
    if (value !== undefined) patch[key] = mergePatch(before[key], value)
  }
  return patch
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
