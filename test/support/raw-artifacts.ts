/** Artifacts made by hand, as another tool (Flux, or an attacker) would push them: no berth packager in the way. */
import { execFile } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { MEDIA_TYPES } from '../../shared/artifact.ts'
import type { FileGround } from './ground.ts'
import { rawTarGz } from './tar.ts'

const run = promisify(execFile)

/** A tar.gz in memory from `files` (path → text), optionally with raw headers for hostile entries. */
export function tarGz(
  files: Record<string, string>,
  extra: Array<{ name: string; type: 'SymbolicLink'; linkpath: string }> = [],
): Promise<Buffer> {
  return Promise.resolve(rawTarGz([...Object.entries(files).map(([name, body]) => ({ name, body })), ...extra]))
}

/** Push `layer` to the plain registry with oras directly; returns the manifest's digest. */
export async function pushRaw(
  g: FileGround,
  reference: string,
  layer: Buffer,
  mediaTypes: { layer?: string; config?: string } = {},
): Promise<void> {
  const dir = join(g.scratch(), `raw-${Math.random().toString(36).slice(2)}`)
  await mkdir(dir)
  await writeFile(join(dir, 'layer.tgz'), layer)
  await writeFile(join(dir, 'config.json'), '{}')
  await run(
    g.ground.parts.oras,
    [
      'push',
      '--plain-http',
      reference,
      '--config',
      `config.json:${mediaTypes.config ?? MEDIA_TYPES.config}`,
      `layer.tgz:${mediaTypes.layer ?? MEDIA_TYPES.content}`,
    ],
    { cwd: dir },
  )
}
