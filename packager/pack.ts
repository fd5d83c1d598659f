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
import { Header } from 'tar/header'
import { Pax } from 'tar/pax'
import { type ArtifactMetadata, METADATA_FILE, objectFileName, sha256Digest } from '../shared/artifact.ts'
import { type Located, toYaml } from '../shared/manifests.ts'
import { SOPS_FOLDER } from '../shared/sops.ts'

export type RenderedEnvironment = {
  name: string
  objects: readonly Located[]
  /** The SOPS files its encrypted Secrets come from, by their place in the artifact (`.sops/<sha256>.yaml`). */
  sopsFiles?: ReadonlyMap<string, Buffer>
}
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
    for (const [path, body] of env.sopsFiles ?? []) {
      files.set(path, body)
      metadata.sops = { ...metadata.sops, [path]: sha256Digest(body) }
    }
  }
  if (metadata.sops) folders.push(SOPS_FOLDER)
  files.set(METADATA_FILE, Buffer.from(`${JSON.stringify(metadata, null, 2)}\n`))

  const blocks: Buffer[] = []
  for (const path of [...folders, ...files.keys()].sort(compare)) {
    const body = files.get(path)
    if (body) tarEntry(blocks, path, 'File', 0o644, body)
    else tarEntry(blocks, `${path}/`, 'Directory', 0o755)
  }
  // The end of the archive: two empty blocks.
  blocks.push(ZEROS.subarray(0, BLOCK * 2))
  // One compression call on the whole tar (zlib's thread pool), rather than a stream of small writes.
  const bytes = await gzipped(Buffer.concat(blocks))
  return { bytes, digest: sha256Digest(bytes), size: bytes.length, metadata }
}

const BLOCK = 512
const ZEROS = Buffer.alloc(BLOCK * 2)

/**
 * Append one tar entry to `out`: its header (preceded by a PAX header when the path does not fit
 * ustar's fields, as for a long object name), its body, and the padding to a whole block.
 * node-tar's own header and PAX encoders, without its streams (tar-stream's took ~40 ms for
 * 2,000 entries, this ~5).
 */
function tarEntry(out: Buffer[], path: string, type: 'File' | 'Directory', mode: number, body?: Buffer): void {
  const size = body?.length ?? 0
  const header = new Header({ path, type, mode, size, mtime: FIXED_MTIME, uid: 0, gid: 0, uname: '', gname: '' })
  const needsPax = header.encode()
  if (needsPax) out.push(new Pax({ path, mtime: FIXED_MTIME, size }).encode())
  if (!header.block) throw new Error(`cannot encode a tar header for ${path}`)
  out.push(header.block)
  if (body) out.push(body, ZEROS.subarray(0, (BLOCK - (size % BLOCK)) % BLOCK))
}

// Byte order, not locale order: the same on every machine.
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
