/**
 * Packing rendered environments into berth's reproducible tar.gz: one folder per
 * environment with one YAML file per object, plus the metadata file at the root.
 *
 * Reproducible: entries in sorted order, mtime fixed, uid/gid 0 and no user/group names,
 * modes 0644/0755, regular files and folders only, gzip header without a timestamp. The same
 * rendered input gives the same bytes on the same Node/zlib.
 */
import { createWriteStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import { pack as tarStream } from 'tar-stream'
import { type ArtifactMetadata, METADATA_FILE, objectFileName, sha256Digest } from '../shared/artifact.ts'
import { type Located, toYaml } from '../shared/manifests.ts'

export type RenderedEnvironment = { name: string; objects: readonly Located[] }
export type ReleaseInfo = { version: string; revision?: string; source?: string }
export type Packed = { file: string; digest: string; size: number; metadata: ArtifactMetadata }

const FIXED_MTIME = new Date(0)

/** Write the tar.gz for `environments` to `outFile`. Built in memory: no staging files. */
export async function pack(
  environments: readonly RenderedEnvironment[],
  release: ReleaseInfo,
  outFile: string,
): Promise<Packed> {
  const files = new Map<string, Buffer>()
  const folders: string[] = []
  const metadata: ArtifactMetadata = {
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'ArtifactMetadata',
    version: release.version,
    ...(release.revision ? { revision: release.revision } : {}),
    ...(release.source ? { source: release.source } : {}),
    environments: {},
  }
  for (const env of [...environments].sort((a, b) => compare(a.name, b.name))) {
    folders.push(env.name)
    const digests: Record<string, string> = {}
    const named = env.objects.map((o) => ({
      path: `${env.name}/${objectFileName(o.object)}`,
      body: Buffer.from(toYaml(o.object)),
    }))
    for (const { path, body } of named.sort((a, b) => compare(a.path, b.path))) {
      files.set(path, body)
      digests[path] = sha256Digest(body)
    }
    metadata.environments[env.name] = { objects: named.length, files: digests }
  }
  files.set(METADATA_FILE, Buffer.from(`${JSON.stringify(metadata, null, 2)}\n`))

  const archive = tarStream()
  const gzipped = pipeline(archive, createGzip(), createWriteStream(outFile))
  for (const path of [...folders, ...files.keys()].sort(compare)) {
    const body = files.get(path)
    const header = { mtime: FIXED_MTIME, uid: 0, gid: 0, uname: '', gname: '' }
    if (body) archive.entry({ ...header, name: path, type: 'file', mode: 0o644, size: body.length }, body)
    else archive.entry({ ...header, name: `${path}/`, type: 'directory', mode: 0o755 })
  }
  archive.finalize()
  await gzipped
  const bytes = await readFile(outFile)
  return { file: outFile, digest: sha256Digest(bytes), size: bytes.length, metadata }
}

// Byte order, not locale order: the same on every machine.
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
