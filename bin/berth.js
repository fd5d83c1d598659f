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
const { run } = await import('../cli/main.ts')
process.exitCode = await run(process.argv)
