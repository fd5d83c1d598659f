/**
 * Metric gates (`spec.health.metrics`), judged without I/O so every branch has a unit test. Once a version's objects
 * are Ready, each check is evaluated every `interval`; a check passes when every evaluation since its first good one
 * satisfied its condition and the latest came at least `for` after that first. One value that breaks the condition
 * fails the version. An evaluation that could not be made (Prometheus unreachable, no data yet) fails nothing but
 * restarts the check's `for`: berth never calls proven a stretch of time it could not see.
 */
import { formatDuration, durationMs } from '../../shared/duration.ts'
import { METRIC_CONDITION, type MetricCheck, type MetricState } from '../../api/environment.ts'
import type { Reading } from './prometheus.ts'

export type MetricJudgement = {
  checks: MetricState[]
  outcome: 'passed' | 'failed' | 'waiting'
  /** What the Ready condition says: the failure, or what is still awaited. */
  message: string
  /** The check that decided (the failed one; every one when all passed). */
  decidedBy: string
  /** When to evaluate again while waiting. */
  nextMs: number
}

/** Whether `value` satisfies `condition` (`< 0.01`). */
export function satisfies(value: number, condition: string): boolean {
  const match = METRIC_CONDITION.exec(condition.trim())
  const op = match?.[1]
  const bound = Number(condition.trim().slice(op?.length ?? 0))
  switch (op) {
    case '<':
      return value < bound
    case '<=':
      return value <= bound
    case '>':
      return value > bound
    case '>=':
      return value >= bound
    case '==':
      return value === bound
    case '!=':
      return value !== bound
    default:
      return false
  }
}

/**
 * Evaluate the checks that are due at `now` (`read` asks Prometheus) and judge them all: failed as soon as one
 * fails, passed once every one has held for its `for`, else waiting.
 */
export async function judgeMetrics(input: {
  checks: readonly MetricCheck[]
  /** What earlier passes recorded for this same version. */
  before: readonly MetricState[] | undefined
  now: Date
  read: (check: MetricCheck) => Promise<Reading>
}): Promise<MetricJudgement> {
  const { now } = input
  const states = await Promise.all(
    input.checks.map(async (check) => {
      const before = input.before?.find((s) => s.name === check.name && s.condition === check.condition)
      // A verdict stands for this version: a failure is not undone by better values later (the spec may reset it).
      if (before?.result === 'Passed' || before?.result === 'Failed') return before
      // Passes come more often than a check's interval (objects changing, the health poll): it is asked only when due.
      if (before?.at && now.getTime() - Date.parse(before.at) < durationMs(check.interval)) return before
      return evaluate(check, before, await input.read(check), now)
    }),
  )
  const failed = states.find((s) => s.result === 'Failed')
  if (failed) {
    return { checks: states, outcome: 'failed', message: failed.message ?? '', decidedBy: failed.name, nextMs: 0 }
  }
  if (states.every((s) => s.result === 'Passed')) {
    const names = states.map((s) => s.name).join(', ')
    return { checks: states, outcome: 'passed', message: `metrics held: ${names}`, decidedBy: names, nextMs: 0 }
  }
  const pending = input.checks.flatMap((check, i) => {
    const state = states[i]
    return state && state.result !== 'Passed' ? [{ check, state }] : []
  })
  const due = ({ check, state }: (typeof pending)[number]): number =>
    Date.parse(state.at ?? now.toISOString()) + durationMs(check.interval) - now.getTime()
  const nextMs = Math.min(...pending.map(due))
  return {
    checks: states,
    outcome: 'waiting',
    message: pending.map(({ check, state }) => awaited(check, state, now)).join('; '),
    decidedBy: pending.map(({ check }) => check.name).join(', '),
    nextMs: Math.max(nextMs, 1000),
  }
}

function evaluate(check: MetricCheck, before: MetricState | undefined, reading: Reading, now: Date): MetricState {
  const at = now.toISOString()
  const base = { name: check.name, condition: check.condition, at }
  if (reading.kind === 'refused') {
    return { ...base, result: 'Failed', message: `metric ${check.name}: ${reading.why} (query ${check.query})` }
  }
  if (reading.kind !== 'values') {
    // No value to judge: the check waits, and its `for` starts again at the next good value.
    return { ...base, result: 'Waiting', message: reading.why, ...(before?.value ? { value: before.value } : {}) }
  }
  const broken = reading.values.find((v) => !satisfies(v.value, check.condition))
  if (broken) {
    const series = broken.series ? ` for ${broken.series}` : ''
    return {
      ...base,
      result: 'Failed',
      value: broken.text,
      message: `metric ${check.name}: ${check.query} is ${broken.text}${series}, which is not ${check.condition}`,
    }
  }
  const value = worst(reading.values, check.condition).text
  const passingSince = before?.result === 'Passing' && before.passingSince ? before.passingSince : at
  const held = now.getTime() - Date.parse(passingSince) >= durationMs(check.for)
  return { ...base, result: held ? 'Passed' : 'Passing', value, passingSince }
}

/** The value nearest to breaking the condition: what a person wants to see. */
function worst(values: ReadonlyArray<{ text: string; value: number }>, condition: string): { text: string } {
  const upper = condition.trim().startsWith('<')
  const lower = condition.trim().startsWith('>')
  const sorted = [...values].sort((a, b) => (upper ? b.value - a.value : lower ? a.value - b.value : 0))
  return sorted[0] ?? { text: '' }
}

function awaited(check: MetricCheck, state: MetricState, now: Date): string {
  if (state.result === 'Waiting') return `metric ${check.name}: ${state.message ?? 'no value yet'}`
  const left = Date.parse(state.passingSince ?? state.at ?? now.toISOString()) + durationMs(check.for) - now.getTime()
  return `metric ${check.name} is ${state.value ?? '?'} (${check.condition}); must hold ${formatDuration(Math.max(left, 0))} more`
}
