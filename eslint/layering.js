/**
 * berth's architecture as lint rules (local ESLint plugin):
 * - `layering`: bin → cli → {packager, reconciler, install} → api → shared. A module imports only
 *   from its own top folder or from a layer below it; the three middle folders never import each
 *   other. Static imports, re-exports and `import()` all count: a lazy import is still a dependency.
 * - `no-cycle`: no module reaches itself through static imports (type-only ones included: a cycle
 *   of types is still two modules that cannot be understood apart).
 * test/, bench/ and examples/ sit above everything and may import any layer.
 */
import { readFileSync } from 'node:fs'
import { dirname, relative, resolve, sep } from 'node:path'

const ROOT = resolve(import.meta.dirname, '..')

/** What each top folder may import besides itself. */
export const ALLOWED = {
  bin: ['cli', 'packager', 'reconciler', 'install', 'api', 'shared'],
  cli: ['packager', 'reconciler', 'install', 'api', 'shared'],
  packager: ['api', 'shared'],
  reconciler: ['api', 'shared'],
  install: ['api', 'shared'],
  api: ['shared'],
  shared: [],
}

const topOf = (file) => relative(ROOT, file).split(sep)[0]

function targetOf(file, source) {
  return typeof source === 'string' && source.startsWith('.') ? resolve(dirname(file), source) : undefined
}

/** Call `check(node, source)` for every import, re-export and import() of a module. */
function visitImports(check) {
  const fromSource = (node) => node.source && check(node, node.source.value)
  return {
    ImportDeclaration: fromSource,
    ExportAllDeclaration: fromSource,
    ExportNamedDeclaration: fromSource,
    ImportExpression: (node) => node.source.type === 'Literal' && check(node, node.source.value),
  }
}

const layering = {
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
    })
  },
}

// Static import edges, read once per lint run from the files themselves.
const STATIC = /^\s*(?:import|export)\s[^'";]*?from\s*['"](\.{1,2}\/[^'"]+)['"]/gm
const edges = new Map()
function importsOf(file) {
  let found = edges.get(file)
  if (found) return found
  found = []
  try {
    for (const [, source] of readFileSync(file, 'utf8').matchAll(STATIC)) found.push(resolve(dirname(file), source))
  } catch {
    // Not a file of ours (or not there): no edges.
  }
  edges.set(file, found)
  return found
}

/** A path of static imports from `start` back to `goal`, if there is one. */
function pathBack(start, goal) {
  const seen = new Set()
  const stack = [[start, [start]]]
  while (stack.length) {
    const [file, path] = stack.pop()
    if (file === goal) return path
    if (seen.has(file)) continue
    seen.add(file)
    for (const next of importsOf(file)) stack.push([next, [...path, next]])
  }
  return undefined
}

const noCycle = {
  meta: { type: 'problem', schema: [], messages: { cycle: 'import cycle: {{path}}' } },
  create(context) {
    const file = context.filename
    const check = (node, source) => {
      const target = targetOf(file, source)
      if (!target) return
      const back = pathBack(target, file)
      if (back) context.report({ node, messageId: 'cycle', data: { path: [file, ...back].map((f) => relative(ROOT, f)).join(' → ') } })
    }
    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
    }
  },
}

export default { rules: { layering, 'no-cycle': noCycle } }
