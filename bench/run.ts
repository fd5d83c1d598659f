/**
 * `npm run bench -- <name>`: runs `bench/<name>.bench.ts`. Each benchmark measures berth
 * against its anchor in the same run and prints one line `<name>: …` with the figures and
 * the ratio. Speed targets live here, never in timed tests.
 */
import { readdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

const dir = fileURLToPath(new URL('.', import.meta.url))
const available = (await readdir(dir))
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.replace(/\.bench\.ts$/, ''))
  .sort()
const name = process.argv[2]

if (!name || !available.includes(name)) {
  const list = available.length > 0 ? available.join(', ') : '(none yet)'
  process.stderr.write(
    `${name ? `no benchmark named "${name}". ` : ''}usage: npm run bench -- <name>; benchmarks: ${list}\n`,
  )
  process.exitCode = 2
} else {
  await import(`./${name}.bench.ts`)
}
