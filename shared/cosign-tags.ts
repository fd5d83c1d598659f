/**
 * The registry side of what cosign attaches to an artifact by tag: an OCI manifest tagged `sha256-<hex>.sig`
 * (signatures) or `sha256-<hex>.att` (attestations) beside it, one layer per signature or attestation. Attaching
 * appends a layer (read, append, push), as cosign does; reading gives the layers of one media type.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { z } from 'zod'
import { sha256Digest } from './artifact.ts'
import { copyFromLayout, fetchBlob, fetchManifest, OrasError, type OrasOptions } from './oras.ts'
import { blob as ociBlob, writeManifestLayout } from './oci-layout.ts'

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'

const layerSchema = z.object({
  mediaType: z.string(),
  digest: z.string(),
  size: z.number(),
  annotations: z.record(z.string(), z.string()).optional(),
})
export type Layer = z.infer<typeof layerSchema>
const manifestSchema = z.object({ layers: z.array(layerSchema) })

/** `host/path:sha256-<hex>.<suffix>`: where cosign keeps what it attaches to `digest` (`sig`, `att`). */
export function attachedTag(repository: string, digest: string, suffix: 'sig' | 'att'): string {
  return `${repository}:${digest.replace(':', '-')}.${suffix}`
}

/** The layers of `mediaType` under `reference`; none when nothing is attached there. */
export async function attachedLayers(reference: string, mediaType: string, access: OrasOptions): Promise<Layer[]> {
  try {
    const fetched = await fetchManifest(reference, access)
    const parsed = manifestSchema.safeParse(fetched.content)
    return parsed.success ? parsed.data.layers.filter((l) => l.mediaType === mediaType) : []
  } catch (error: unknown) {
    if (error instanceof OrasError && error.failure === 'not-found') return []
    throw error
  }
}

/** Add `blob` as a layer (`mediaType`, `annotations`) to the manifest `reference` of `repository`, after `before`. */
export async function appendLayer(
  repository: string,
  reference: string,
  before: readonly Layer[],
  blob: Buffer,
  layer: { mediaType: string; annotations: Record<string, string> },
  access: OrasOptions,
): Promise<void> {
  const added: Layer = { ...layer, digest: sha256Digest(blob), size: blob.length }
  const all = [...before, added]
  // A valid image config, as cosign writes one: registries and cosign expect the blob to exist.
  const config = Buffer.from(
    JSON.stringify({
      architecture: '',
      config: {},
      created: '0001-01-01T00:00:00Z',
      history: all.map(() => ({ created: '0001-01-01T00:00:00Z' })),
      os: '',
      rootfs: { type: 'layers', diff_ids: all.map((l) => l.digest) },
    }),
  )
  const configDescriptor = ociBlob(OCI_CONFIG, config)
  const manifest = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: configDescriptor, layers: all }),
  )
  // One `oras cp` of a layout with the new blobs and the manifest (three processes before): the layers already
  // attached are in the registry, and oras copies only what the target lacks.
  const work = await mkdtemp(join(tmpdir(), 'berth-attach-'))
  try {
    const tag = reference.slice(reference.lastIndexOf(':') + 1)
    await writeManifestLayout(work, tag, OCI_MANIFEST, manifest, [
      [added, blob],
      [configDescriptor, config],
    ])
    await copyFromLayout(`${work}:${tag}`, reference, access)
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/** A blob's bytes (oras checks them against the digest while downloading). */
export async function readBlob(reference: string, access: OrasOptions): Promise<Buffer> {
  const work = await mkdtemp(join(tmpdir(), 'berth-blob-'))
  try {
    await fetchBlob(reference, join(work, 'blob'), access)
    return await readFile(join(work, 'blob'))
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}
