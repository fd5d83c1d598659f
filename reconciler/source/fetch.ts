/**
 * Fetch a resolved artifact by digest, verify it, and read it: the manifest must be the
 * Flux/berth shape (one tar.gz layer), the layer is downloaded once into a content-addressed
 * cache and its sha256 checked on every use, and the archive is read defensively.
 */
import { randomUUID } from 'node:crypto'
import { mkdir, readFile, rename, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { z } from 'zod'
import { MEDIA_TYPES, sha256Digest } from '../../shared/artifact.ts'
import { InvalidInputError, RemoteError } from '../../shared/errors.ts'
import { fetchBlob, type OrasOptions } from '../../shared/oras.ts'
import { type ArchiveLimits, DEFAULT_LIMITS, readArchive } from './extract.ts'
import type { Resolved } from './resolve.ts'

export type FetchLimits = ArchiveLimits & { compressedBytes: number }
export const DEFAULT_FETCH_LIMITS: FetchLimits = { ...DEFAULT_LIMITS, compressedBytes: 16 * 1024 * 1024 }

const descriptor = z.object({
  mediaType: z.string(),
  digest: z.string().regex(/^sha256:[a-f0-9]{64}$/),
  size: z.number().int().nonnegative(),
})
const manifestSchema = z.object({ mediaType: z.string().optional(), config: descriptor, layers: z.array(descriptor) })

/** The manifest is not one berth can consume. */
export class ArtifactError extends InvalidInputError {}

/** Check the manifest's shape; returns the one content layer. Pure, for unit tests. */
export function contentLayer(
  manifest: unknown,
  limits: Pick<FetchLimits, 'compressedBytes'>,
): z.infer<typeof descriptor> {
  const parsed = manifestSchema.safeParse(manifest)
  if (!parsed.success)
    throw new ArtifactError(
      'InvalidManifest',
      'artifact refused: the manifest is not an OCI image manifest with a config and layers',
    )
  const { mediaType, config, layers } = parsed.data
  if (mediaType !== undefined && mediaType !== MEDIA_TYPES.manifest)
    throw new ArtifactError(
      'WrongMediaType',
      `artifact refused: manifest media type ${mediaType}, expected ${MEDIA_TYPES.manifest}`,
    )
  if (config.mediaType !== MEDIA_TYPES.config)
    throw new ArtifactError(
      'WrongMediaType',
      `artifact refused: config media type ${config.mediaType}, expected ${MEDIA_TYPES.config}`,
    )
  if (layers.length !== 1)
    throw new ArtifactError('WrongLayers', `artifact refused: ${layers.length} layers, expected exactly one`)
  const layer = layers[0] as z.infer<typeof descriptor>
  if (layer.mediaType !== MEDIA_TYPES.content)
    throw new ArtifactError(
      'WrongMediaType',
      `artifact refused: layer media type ${layer.mediaType}, expected ${MEDIA_TYPES.content}`,
    )
  if (layer.size > limits.compressedBytes)
    throw new ArtifactError(
      'TooLarge',
      `artifact refused: the layer is ${layer.size} bytes, over the limit of ${limits.compressedBytes}`,
    )
  return layer
}

/**
 * Files of the artifact, by path. Downloads the layer only when the cache lacks it; a cached
 * layer that fails its check is dropped and fetched again, once.
 */
export async function fetchArtifact(
  repository: string,
  resolved: Resolved,
  access: OrasOptions,
  cacheDir: string,
  limits: FetchLimits = DEFAULT_FETCH_LIMITS,
): Promise<Map<string, Buffer>> {
  const layer = contentLayer(resolved.manifest, limits)
  const blobs = join(cacheDir, 'blobs', 'sha256')
  const cached = join(blobs, layer.digest.slice('sha256:'.length))
  let bytes: Buffer | undefined = await readFile(cached).catch(() => undefined)
  if (bytes && sha256Digest(bytes) !== layer.digest) {
    // A damaged cache entry is never used.
    await rm(cached, { force: true })
    bytes = undefined
  }
  bytes ??= await download(`${repository}@${layer.digest}`, layer.digest, cached, access)
  return await readArchive(bytes, limits)
}

async function download(reference: string, digest: string, cached: string, access: OrasOptions): Promise<Buffer> {
  await mkdir(dirname(cached), { recursive: true })
  // Unique per fetch: Environments pinned to the same digest may fetch it at the same time.
  const partial = `${cached}.${process.pid}.${randomUUID()}.partial`
  try {
    // oras checks the digest while reading (reason DigestMismatch when the registry serves other bytes).
    await fetchBlob(reference, partial, access)
    const bytes = await readFile(partial)
    const actual = sha256Digest(bytes)
    if (actual !== digest) {
      throw new RemoteError(
        'DigestMismatch',
        `the registry served ${reference} with sha256 ${actual}; nothing was used`,
      )
    }
    await rename(partial, cached)
    return bytes
  } finally {
    await rm(partial, { force: true })
  }
}
