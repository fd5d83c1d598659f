/**
 * Packing rendered environments into berth's reproducible tar.gz: one folder per
 * environment with one YAML file per object, plus the metadata file at the root.
 *
 * Reproducible: entries in sorted order, mtime fixed, uid/gid 0 and no user/group names,
 * modes 0644/0755, regular files and folders only, gzip header without a timestamp. The same
 * rendered input gives the same bytes on the same Node/zlib.
 */
import { createHash } from 'node:crypto'
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { create as createTar } from 'tar'
import { type ArtifactMetadata, METADATA_FILE, objectFileName } from '../shared/artifact.ts'
import { type Located, toYaml } from '../shared/manifests.ts'

export type RenderedEnvironment = { name: string; objects: readonly Located[] }
export type ReleaseInfo = { version: string; revision?: string; source?: string }
export type Packed = { file: string; digest: string; size: number; metadata: ArtifactMetadata }

const FIXED_MTIME = new Date(0)

/** Write the tar.gz for `environments` to `outFile`. */
export async function pack(environments: readonly RenderedEnvironment[], release: ReleaseInfo, outFile: string): Promise<Packed> {
  const staging = await mkdtemp(join(tmpdir(), 'berth-pack-'))
  try {
    const entries: string[] = [METADATA_FILE]
    const metadata: ArtifactMetadata = {
      apiVersion: 'berth.dev/v1alpha1',
      kind: 'ArtifactMetadata',
      version: release.version,
      ...(release.revision ? { revision: release.revision } : {}),
      ...(release.source ? { source: release.source } : {}),
      environments: {},
    }
    for (const env of [...environments].sort((a, b) => compare(a.name, b.name))) {
      await mkdir(join(staging, env.name))
      await chmod(join(staging, env.name), 0o755)
      entries.push(env.name)
      const files: Record<string, string> = {}
      const named = env.objects.map((o) => ({ path: `${env.name}/${objectFileName(o.object)}`, text: toYaml(o.object) }))
      for (const { path, text } of named.sort((a, b) => compare(a.path, b.path))) {
        await writeFile(join(staging, path), text)
        await chmod(join(staging, path), 0o644)
        files[path] = `sha256:${createHash('sha256').update(text).digest('hex')}`
        entries.push(path)
      }
      metadata.environments[env.name] = { objects: named.length, files }
    }
    await writeFile(join(staging, METADATA_FILE), `${JSON.stringify(metadata, null, 2)}\n`)
    await chmod(join(staging, METADATA_FILE), 0o644)

    await createTar(
      {
        cwd: staging,
        file: outFile,
        gzip: { level: 9 },
        portable: true,
        mtime: FIXED_MTIME,
        noDirRecurse: true,
        strict: true,
      },
      entries.sort(compare),
    )
    const bytes = await readFile(outFile)
    return { file: outFile, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.length, metadata }
  } finally {
    await rm(staging, { recursive: true, force: true })
  }
}

// Byte order, not locale order: the same on every machine.
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
