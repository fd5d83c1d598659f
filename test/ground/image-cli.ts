/**
 * `npm run image [-- --no-cache]`: build berth's image from the Dockerfile (and, the first time, the base images it
 * names), push it to the registry of the ground `npm run testground -- up` started, and print one line:
 *   image: <reference> digest sha256:<hex> size <N> MiB
 * The size is what a node pulls (config and compressed layers). `--no-cache` makes the bases and every build step
 * again; a reproducible build prints the same digest.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BerthError, EnvironmentError } from '../../shared/errors.ts'
import { runningGround } from './ground.ts'
import { buildImage, mebibytes, pulledBytes, pushImage, REPO_ROOT } from './image.ts'

const say = (line: string): void => {
  process.stderr.write(`image: ${line}\n`)
}

async function main(args: readonly string[]): Promise<void> {
  const unknown = args.filter((a) => a !== '--no-cache')
  if (unknown.length > 0) throw new BerthError('Usage', `unknown argument ${unknown.join(' ')}: the only one is --no-cache`)
  const ground = await runningGround()
  if (!ground)
    throw new EnvironmentError('NoGround', 'no test ground is up to push to: start one with npm run testground -- up')
  const version = (JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version
  const built = await buildImage({ say, noCache: args.includes('--no-cache') })
  const reference = `${ground.registries.plain.host}/berth:${version}`
  const digest = await pushImage(built.local, reference, true)
  const bytes = await pulledBytes(reference, digest)
  process.stdout.write(`image: ${reference} digest ${digest} size ${mebibytes(bytes)} MiB\n`)
}

try {
  await main(process.argv.slice(2))
} catch (error: unknown) {
  say(error instanceof Error ? error.message : String(error))
  process.exitCode = error instanceof BerthError ? error.exitCode : 1
}
