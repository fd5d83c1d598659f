/**
 * An OCI image layout on disk holding one artifact: the manifest berth publishes, written by
 * berth itself so its digest is known before any registry is touched, and copied up byte for
 * byte by `oras cp --from-oci-layout`.
 *
 * The manifest is the one `oras push` and `flux push artifact` make: Flux's config media type
 * with an empty JSON object, one layer titled by its file name, annotations on the manifest.
 * Written here rather than by `oras push --oci-layout` to save a process on every release; the
 * JSON is built in a fixed key order, so the same inputs give the same digest.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MEDIA_TYPES, sha256Digest } from './artifact.ts'

export type LayoutArtifact = {
  /** The tar.gz, already in memory. */
  layer: Uint8Array
  /** `org.opencontainers.image.title` of the layer. */
  title: string
  annotations: Readonly<Record<string, string>>
}

export type Descriptor = { mediaType: string; digest: string; size: number }

/** Write `artifact` to an OCI layout at `dir`, tagged `tag`; returns the manifest's descriptor. */
export async function writeLayout(dir: string, tag: string, artifact: LayoutArtifact): Promise<Descriptor> {
  const config = Buffer.from('{}')
  const configDescriptor = blob(MEDIA_TYPES.config, config)
  const layerDescriptor = blob(MEDIA_TYPES.content, artifact.layer)
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.manifest,
      config: configDescriptor,
      layers: [{ ...layerDescriptor, annotations: { 'org.opencontainers.image.title': artifact.title } }],
      // Sorted, as Go's JSON (oras, flux) writes a map: the same manifest those tools would make.
      annotations: Object.fromEntries(Object.entries(artifact.annotations).sort(([a], [b]) => (a < b ? -1 : 1))),
    }),
  )
  return await writeManifestLayout(dir, tag, MEDIA_TYPES.manifest, manifest, [
    [configDescriptor, config],
    [layerDescriptor, artifact.layer],
  ])
}

/**
 * Write the manifest `manifest` (exactly these bytes, of `mediaType`) to an OCI layout at `dir`, tagged `tag`,
 * with `blobs` beside it; returns the manifest's descriptor. Blobs it names that `blobs` leaves out must be in the
 * registry it is copied to already: `oras cp` copies only what the target lacks.
 */
export async function writeManifestLayout(
  dir: string,
  tag: string,
  mediaType: string,
  manifest: Uint8Array,
  blobs: ReadonlyArray<readonly [Descriptor, Uint8Array]>,
): Promise<Descriptor> {
  const manifestDescriptor = blob(mediaType, manifest)
  const folder = join(dir, 'blobs', 'sha256')
  await mkdir(folder, { recursive: true })
  const index = {
    schemaVersion: 2,
    manifests: [{ ...manifestDescriptor, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  }
  const contents = [...blobs, [manifestDescriptor, manifest] as const]
  await Promise.all([
    writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' })),
    writeFile(join(dir, 'index.json'), JSON.stringify(index)),
    ...contents.map(([d, bytes]) => writeFile(join(folder, d.digest.slice('sha256:'.length)), bytes)),
  ])
  return manifestDescriptor
}

export function blob(mediaType: string, bytes: Uint8Array): Descriptor {
  return { mediaType, digest: sha256Digest(bytes), size: bytes.length }
}
