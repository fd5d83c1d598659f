/**
 * Packing rendered environments into berth's reproducible tar.gz: one folder per
 * environment with one YAML file per object, plus the metadata file at the root.
 *
 * Reproducible: entries in sorted order, mtime fixed, uid/gid 0 and no user/group names,
 * modes 0644/0755, regular files and folders only, gzip header without a timestamp. The same
 * rendered input gives the same bytes on the same Node/zlib.
 */
import { writeFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { gzip } from 'node:zlib'
import { pack as tarStream } from 'tar-stream'
import { type ArtifactMetadata, METADATA_FILE, objectFileName, sha256Digest } from '../shared/artifact.ts'
import { type Located, toYaml } from '../shared/manifests.ts'

export type RenderedEnvironment = { name: string; objects: readonly Located[] }
export type ReleaseInfo = { version: string; revision?: string; source?: string }
export type Packed = { file: string; digest: string; size: number; metadata: ArtifactMetadata }

const FIXED_MTIME = new Date(0)
const gzipped = promisify(gzip)

/** The tar.gz, in memory: what `berth push` puts in the artifact's layer. */
export type Archive = { bytes: Buffer; digest: string; size: number; metadata: ArtifactMetadata }

/** Write the tar.gz for `environments` to `outFile`. */
export async function pack(
  environments: readonly RenderedEnvironment[],
  release: ReleaseInfo,
  outFile: string,
): Promise<Packed> {
  const { bytes, ...archive } = await packArchive(environments, release)
  await writeFile(outFile, bytes)
  return { file: outFile, ...archive }
}

/** Build the tar.gz for `environments` in memory: no staging files. */
export async function packArchive(
  environments: readonly RenderedEnvironment[],
  release: ReleaseInfo,
): Promise<Archive> {
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
  const chunks: Buffer[] = []
  archive.on('data', (chunk) => chunks.push(chunk as Buffer))
  const ended = new Promise<void>((resolve, reject) => archive.on('end', () => resolve()).on('error', reject))
  for (const path of [...folders, ...files.keys()].sort(compare)) {
    const body = files.get(path)
    const header = { mtime: FIXED_MTIME, uid: 0, gid: 0, uname: '', gname: '' }
    if (body) archive.entry({ ...header, name: path, type: 'file', mode: 0o644, size: body.length }, body)
    else archive.entry({ ...header, name: `${path}/`, type: 'directory', mode: 0o755 })
  }
  archive.finalize()
  await ended
  // One compression call on the whole tar (zlib's thread pool), rather than a stream of small writes.
  const bytes = await gzipped(Buffer.concat(chunks))
  return { bytes, digest: sha256Digest(bytes), size: bytes.length, metadata }
}

// Byte order, not locale order: the same on every machine.
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
