/**
 * The berth artifact format, shared by the packager (writes it) and the reconciler (reads
 * it). Flux's media types, so Flux's source-controller and `flux pull artifact` consume
 * berth artifacts as they are; berth's own additions live in one metadata file at the root
 * of the tar.gz that Flux ignores.
 */
import { createHash } from 'node:crypto'
// Only semver's parser: the whole package is ~10 ms more start-up for every push.
import parseSemver from 'semver/functions/parse.js'
import { z } from 'zod'
import { groupOf, type KubeObject } from './manifests.ts'

export const MEDIA_TYPES = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.cncf.flux.config.v1+json',
  content: 'application/vnd.cncf.flux.content.v1.tar+gzip',
} as const

export const ANNOTATIONS = {
  version: 'org.opencontainers.image.version',
  source: 'org.opencontainers.image.source',
  revision: 'org.opencontainers.image.revision',
  created: 'org.opencontainers.image.created',
} as const

/** The OCI digest of `bytes`: `sha256:<hex>`. */
export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** `oci://<registry>/<path>`: lowercase path, no tag. Group 1 is `<registry>/<path>`. */
export const OCI_REPOSITORY = /^oci:\/\/([^/\s]+\/[a-z0-9]+(?:[._/-][a-z0-9]+)*)$/

/** `oci://host/path` → `host/path` (what oras takes); undefined when the URL is not one. */
export function repositoryPath(url: string): string | undefined {
  return OCI_REPOSITORY.exec(url)?.[1]
}

/** Name of the metadata file at the root of the tar.gz. */
export const METADATA_FILE = 'berth-artifact.json'

const sha256 = z.string().regex(/^sha256:[a-f0-9]{64}$/)

export const metadataSchema = z.strictObject({
  apiVersion: z.literal('berth.dev/v1alpha1'),
  kind: z.literal('ArtifactMetadata'),
  version: z.string(),
  revision: z.string().optional(),
  source: z.string().optional(),
  environments: z.record(
    z.string(),
    z.strictObject({
      objects: z.number().int().nonnegative(),
      files: z.record(z.string(), sha256),
    }),
  ),
  /** The SOPS files the encrypted Secrets come from (`.sops/<sha256>.yaml`), as SOPS wrote them. */
  sops: z.record(z.string(), sha256).optional(),
})
export type ArtifactMetadata = z.infer<typeof metadataSchema>

/**
 * File of an object inside its environment's folder: `<namespace|_cluster>_<kind>[.<group>]_<name>.yaml`.
 * Unique per object: none of the parts can contain `_`.
 */
export function objectFileName(object: KubeObject): string {
  const group = groupOf(object)
  const kind = `${object.kind.toLowerCase()}${group ? `.${group}` : ''}`
  return `${object.metadata.namespace ?? '_cluster'}_${kind}_${object.metadata.name}.yaml`
}

/**
 * The OCI tag for a release version: the semver without a leading `v`. Build metadata
 * (`+…`) is refused: `+` is not valid in an OCI tag, and two builds of one version would
 * then share a tag. Returns undefined with the reason when the input is not usable.
 */
export function releaseTag(input: string): { tag: string } | { problem: string } {
  const trimmed = input.trim()
  const parsed = parseSemver(trimmed.replace(/^v/, ''))
  if (!parsed)
    return {
      problem: `"${input}" is not a semantic version (MAJOR.MINOR.PATCH, optionally -PRERELEASE, for example 1.4.0 or 2.0.0-rc.1)`,
    }
  if (parsed.build.length > 0)
    return {
      problem: `"${input}" carries build metadata (+${parsed.build.join('.')}): OCI tags cannot hold "+"; release it as ${parsed.version}`,
    }
  return { tag: parsed.version }
}
