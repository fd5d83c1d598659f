#!/usr/bin/env node
// berth runs its TypeScript sources directly (Node's type stripping, Node >= 22.18):
// no build step between a checkout and a working CLI. Say so plainly on an older Node.
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `berth: Node ${process.versions.node} is too old; berth needs Node >= 22.18 (24 LTS recommended).\n`,
  )
  process.exit(1)
}
// Cache compiled modules on disk (Node >= 22.1): later runs skip parsing and type stripping.
const { enableCompileCache } = await import('node:module')
enableCompileCache()
// A checkout runs the TypeScript sources; an installed package (Node strips no types under
// node_modules) runs the JavaScript `npm pack` emitted into dist/.
const { existsSync } = await import('node:fs')
const sources = existsSync(new URL('../cli/main.ts', import.meta.url))
const entry = sources ? '../cli/main.ts' : '../dist/cli/main.js'
// Both entries are the same module (dist/ is emitted from cli/main.ts); the checker cannot see dist/.
/** @type {typeof import('../cli/main.ts')} */
// eslint-disable-next-line @typescript-eslint/no-unsafe-assignment
const { run } = await import(entry)
process.exitCode = await run(process.argv)
