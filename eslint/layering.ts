/**
 * berth's architecture as lint rules (a local ESLint plugin):
 * - `layering`: bin → cli → {packager, reconciler, install} → api → shared. A module imports only
 *   from its own top folder or from a layer below it; the three middle folders never import each
 *   other. Static imports, re-exports and `import()` all count: a lazy import is still a dependency.
 * - `no-cycle`: no module reaches itself through static imports (type-only ones included: a cycle
 *   of types is still two modules that cannot be understood apart).
 * test/, bench/ and examples/ sit above everything and may import any layer.
 */
import { readFileSync } from 'node:fs'
import { dirname, relative, resolve, sep } from 'node:path'
import type { ESLint, Rule } from 'eslint'
import type { Node } from 'estree'

const ROOT = resolve(import.meta.dirname, '..')

/** What each top folder may import besides itself. */
export const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  bin: ['cli', 'packager', 'reconciler', 'install', 'api', 'shared'],
  cli: ['packager', 'reconciler', 'install', 'api', 'shared'],
  packager: ['api', 'shared'],
  reconciler: ['api', 'shared'],
  install: ['api', 'shared'],
  api: ['shared'],
  shared: [],
}

const topOf = (file: string): string => relative(ROOT, file).split(sep)[0] ?? ''

function targetOf(file: string, source: unknown): string | undefined {
  return typeof source === 'string' && source.startsWith('.') ? resolve(dirname(file), source) : undefined
}

type Check = (node: Node, source: unknown) => void

/** Call `check` for every import and re-export of a module, and (with `dynamic`) every import(). */
function visitImports(check: Check, dynamic: boolean): Rule.RuleListener {
  const fromSource = (node: Node & { source?: { value?: unknown } | null | undefined }): void => {
    if (node.source) check(node, node.source.value)
  }
  return {
    ImportDeclaration: fromSource,
    ExportAllDeclaration: fromSource,
    ExportNamedDeclaration: fromSource,
    ...(dynamic
      ? {
          ImportExpression: (node): void => {
            if (node.source.type === 'Literal') check(node, node.source.value)
          },
        }
      : {}),
  }
}

const layering: Rule.RuleModule = {
  meta: { type: 'problem', schema: [], messages: { layer: '{{from}}/ may not import {{to}}/: {{why}}' } },
  create(context) {
    const file = context.filename
    const from = topOf(file)
    const allowed = ALLOWED[from]
    if (!allowed) return {}
    return visitImports((node, source) => {
      const target = targetOf(file, source)
      if (!target) return
      const to = topOf(target)
      if (to === from || allowed.includes(to) || !(to in ALLOWED)) return
      const why = allowed.length
        ? `it may import ${allowed.join(', ')} (layering: bin → cli → packager|reconciler|install → api → shared)`
        : 'it is the bottom layer and imports no other folder of berth'
      context.report({ node, messageId: 'layer', data: { from, to, why } })
    }, true)
  },
}

// Static import edges, read once per lint run from the files themselves.
const STATIC = /^\s*(?:import|export)\s[^'";]*?from\s*['"](\.{1,2}\/[^'"]+)['"]/gm
const edges = new Map<string, string[]>()
function importsOf(file: string): string[] {
  let found = edges.get(file)
  if (found) return found
  found = []
  let text = ''
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    // Not a file of ours (or not there): no edges.
  }
  for (const [, source] of text.matchAll(STATIC)) if (source) found.push(resolve(dirname(file), source))
  edges.set(file, found)
  return found
}

/** A path of static imports from `start` back to `goal`, if there is one. */
function pathBack(start: string, goal: string): string[] | undefined {
  const seen = new Set<string>()
  const stack: Array<[string, string[]]> = [[start, [start]]]
  for (let next = stack.pop(); next; next = stack.pop()) {
    const [file, path] = next
    if (file === goal) return path
    if (seen.has(file)) continue
    seen.add(file)
    for (const imported of importsOf(file)) stack.push([imported, [...path, imported]])
  }
  return undefined
}

const noCycle: Rule.RuleModule = {
  meta: { type: 'problem', schema: [], messages: { cycle: 'import cycle: {{path}}' } },
  create(context) {
    const file = context.filename
    return visitImports((node, source) => {
      const target = targetOf(file, source)
      const back = target && pathBack(target, file)
      if (!back) return
      const path = [file, ...back].map((f) => relative(ROOT, f)).join(' → ')
      context.report({ node, messageId: 'cycle', data: { path } })
    }, false)
  },
}

const plugin: ESLint.Plugin = { rules: { 'layering': layering, 'no-cycle': noCycle } }
export default plugin
