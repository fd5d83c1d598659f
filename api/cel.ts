/**
 * CEL health expressions (`spec.health.exprs`), as Flux's `healthCheckExprs` take them: an expression reads one
 * object through its top-level fields (`metadata`, `spec`, `status`, …) and says true or false. Parsing and
 * evaluation are @bufbuild/cel's, a conformance-tested CEL implementation; berth only checks, before anything runs,
 * that an expression parses and names nothing but the object's fields, so a typo is refused as InvalidSpec rather
 * than found at the first rollout.
 */
import { createRequire } from 'node:module'
import type * as CelLibrary from '@bufbuild/cel'

type Parsed = ReturnType<typeof CelLibrary.parse>
type Expr = Parsed['expr']

/**
 * The library, loaded on first use: it takes a third of a second to load, and the schema (with it every CLI command)
 * needs it only for a spec that has CEL rules. Synchronously, as zod's refinements are, through its CommonJS build.
 */
let library: typeof CelLibrary | undefined
const cel = (): typeof CelLibrary => (library ??= createRequire(import.meta.url)('@bufbuild/cel') as typeof CelLibrary)

/** What an expression may name: the object's top-level fields, and CEL's own type names (`type(x) == int`). */
const OBJECT_FIELDS = ['apiVersion', 'kind', 'metadata', 'spec', 'status'] as const
const TYPE_NAMES = ['int', 'uint', 'double', 'bool', 'string', 'bytes', 'list', 'map', 'null_type', 'type', 'dyn']
const KNOWN = new Set<string>([...OBJECT_FIELDS, ...TYPE_NAMES])

let env: ReturnType<typeof CelLibrary.celEnv> | undefined

/** One compiled expression: true, false, or why it could not say (a missing field, a result that is not a bool). */
export type CelCheck = (object: object) => { value: boolean } | { error: string }

/** Why `source` is not a usable health expression, or undefined when it is. */
export function celProblem(source: string): string | undefined {
  let parsed: Parsed
  try {
    parsed = cel().parse(source)
  } catch (error: unknown) {
    return `is not valid CEL: ${error instanceof Error ? error.message : String(error)}`
  }
  const unknown = [...freeNames(parsed.expr, new Set())].filter((name) => !KNOWN.has(name))
  if (unknown.length > 0) {
    return `names ${unknown.map((n) => `"${n}"`).join(', ')}, which an object does not have: use its fields `
      + `(${OBJECT_FIELDS.join(', ')}), as in status.conditions.exists(c, c.type == 'Ready')`
  }
  return undefined
}

/** Compile `source` (already checked by {@link celProblem}) into a check over one object. */
export function compileCel(source: string): CelCheck {
  const { celEnv, isCelError, parse, plan } = cel()
  env ??= celEnv()
  const run = plan(env, parse(source))
  return (object) => {
    const fields = object as Record<string, unknown>
    const bindings = Object.fromEntries(OBJECT_FIELDS.filter((f) => fields[f] !== undefined).map((f) => [f, fields[f]]))
    const result = run(bindings as Parameters<typeof run>[0])
    if (isCelError(result)) return { error: result.message }
    if (typeof result !== 'boolean') return { error: 'evaluated to something other than true or false' }
    return { value: result }
  }
}

/**
 * The identifiers `expr` reads that nothing inside it binds: a comprehension's variables (what `all`, `exists`,
 * `filter` and `map` expand to) are bound within its condition, step and result only.
 */
function freeNames(expr: Expr | undefined, bound: ReadonlySet<string>): Set<string> {
  const found = new Set<string>()
  const visit = (e: Expr | undefined, scope: ReadonlySet<string>): void => {
    if (!e) return
    const kind = e.exprKind
    switch (kind.case) {
      case 'identExpr':
        if (!scope.has(kind.value.name)) found.add(kind.value.name)
        return
      case 'selectExpr':
        visit(kind.value.operand, scope)
        return
      case 'callExpr':
        visit(kind.value.target, scope)
        for (const arg of kind.value.args) visit(arg, scope)
        return
      case 'listExpr':
        for (const element of kind.value.elements) visit(element, scope)
        return
      case 'structExpr':
        for (const entry of kind.value.entries) {
          if (entry.keyKind.case === 'mapKey') visit(entry.keyKind.value, scope)
          visit(entry.value, scope)
        }
        return
      case 'comprehensionExpr': {
        const c = kind.value
        visit(c.iterRange, scope)
        visit(c.accuInit, scope)
        const inner = new Set([...scope, c.iterVar, c.iterVar2, c.accuVar].filter(Boolean))
        for (const part of [c.loopCondition, c.loopStep, c.result]) visit(part, inner)
        return
      }
      default:
    }
  }
  visit(expr, bound)
  return found
}
