/**
 * Health of one object: the CEL rules of `spec.health.exprs` for its kind when there are any (they take precedence),
 * else kstatus. The rules are judged as Flux judges `healthCheckExprs`: an object whose controller has not observed
 * its generation yet is in progress; then inProgress, failed and current are tried in that order and the first that
 * is true decides; none true is in progress. An expression that cannot be evaluated (a field not there yet, most
 * often a status not written yet) decides nothing: the object stays in progress, with the reason said, until the
 * health timeout.
 */
import { compileCel, type CelCheck } from '../../api/cel.ts'
import type { HealthExpr } from '../../api/environment.ts'
import { type Health, health as kstatus, unobservedGeneration } from './kstatus.ts'

type Compiled = { kind: string; rules: Array<{ field: 'inProgress' | 'failed' | 'current'; check: CelCheck }> }

/** Compiled once per expression text: every pass of every Environment with the same rules shares them. */
const compiled = new Map<string, CelCheck>()
const MAX_COMPILED = 512

function compile(source: string): CelCheck {
  let check = compiled.get(source)
  if (!check) {
    if (compiled.size >= MAX_COMPILED) compiled.clear()
    check = compileCel(source)
    compiled.set(source, check)
  }
  return check
}

const ORDER = [
  ['inProgress', 'InProgress'],
  ['failed', 'Failed'],
  ['current', 'Current'],
] as const

/** A judge of objects for `exprs`: by CEL for the kinds they name, by kstatus for the rest. */
export function healthJudge(exprs: readonly HealthExpr[] | undefined): (object: object) => Health {
  if (!exprs?.length) return kstatus
  const byKind = new Map<string, Compiled>()
  for (const e of exprs) {
    const rules = ORDER.flatMap(([field]) => (e[field] ? [{ field, check: compile(e[field]) }] : []))
    byKind.set(`${e.apiVersion}|${e.kind}`, { kind: e.kind, rules })
  }
  return (object) => {
    const o = object as { apiVersion?: string; kind?: string }
    const rules = byKind.get(`${o.apiVersion ?? ''}|${o.kind ?? ''}`)
    return rules ? byCel(object, rules) : kstatus(object)
  }
}

function byCel(object: object, compiledRules: Compiled): Health {
  const unobserved = unobservedGeneration(object)
  if (unobserved) return unobserved
  const unanswered: string[] = []
  for (const { field, check } of compiledRules.rules) {
    const result = check(object)
    if ('error' in result) {
      unanswered.push(`${field}: ${result.error}`)
      continue
    }
    if (!result.value) continue
    const status = ORDER.find(([f]) => f === field)?.[1] ?? 'InProgress'
    return { status, message: status === 'Current' ? '' : `spec.health.exprs ${field} is true` }
  }
  const why = unanswered.length > 0 ? ` (${unanswered.join('; ')})` : ''
  return { status: 'InProgress', message: `spec.health.exprs: current is not true yet${why}` }
}
