/**
 * Resolve an Environment's pin to one artifact: an exact version names its tag; a range
 * takes the highest tag that satisfies it (prereleases only when the range names one).
 * Either way the tag is then resolved to a digest, and a pinned digest must match.
 */
import semver from 'semver'
import { ANNOTATIONS, releaseTag } from '../../shared/artifact.ts'
import { BerthError, InvalidInputError, WaitingError } from '../../shared/errors.ts'
import { fetchManifest, listTags, type OrasOptions } from '../../shared/oras.ts'

/** A version that is not published (yet): CI may still be pushing it, so look again after this long. */
export const UNPUBLISHED_RETRY_MS = 30_000

export type Resolved = { version: string; digest: string; manifest: Record<string, unknown> }

/** Pick the tag for `pin` among `tags`; pure, for unit tests. Undefined when none fits. */
export function chooseTag(pin: string, tags: readonly string[]): string | undefined {
  const exact = releaseTag(pin)
  if ('tag' in exact) return tags.includes(exact.tag) ? exact.tag : undefined
  const versions = tags.filter((t) => semver.valid(t) !== null && !t.includes('+'))
  return semver.maxSatisfying(versions, pin) ?? undefined
}

/** Whether `pin` is a range (`~1.2`) rather than one version: a new release can change what it names. */
export function isRange(pin: string): boolean {
  return !('tag' in releaseTag(pin))
}

export async function resolve(
  repository: string,
  pin: string,
  expectedDigest: string | undefined,
  access: OrasOptions,
): Promise<Resolved> {
  const exact = releaseTag(pin)
  let tag: string
  if ('tag' in exact) {
    tag = exact.tag
  } else {
    const tags = await listTags(repository, access)
    const chosen = chooseTag(pin, tags)
    if (!chosen)
      throw unpublished(`no version in ${repository} satisfies "${pin}" (${tags.length} tags, none matching)`)
    tag = chosen
  }
  let fetched
  try {
    fetched = await fetchManifest(`${repository}:${tag}`, access)
  } catch (error: unknown) {
    if (error instanceof BerthError && error.reason === 'ArtifactNotFound') {
      throw unpublished(`version ${tag} is not published in ${repository}`, error)
    }
    throw error
  }
  if (expectedDigest && fetched.digest !== expectedDigest) {
    throw new InvalidInputError(
      'DigestMismatch',
      `${repository}:${tag} now points at ${fetched.digest}, not the pinned ${expectedDigest}: the tag moved; refusing it`,
    )
  }
  checkStatedVersion(repository, tag, fetched.digest, fetched.content)
  return { version: tag, digest: fetched.digest, manifest: fetched.content }
}

/**
 * An artifact that states its version (`org.opencontainers.image.version`, which berth's packager
 * always sets and a signature covers through the digest) must be reached by that version's tag:
 * an older release re-tagged as a newer one is refused, signed or not. One that states none
 * (`flux push artifact` sets none) is taken at its tag's word.
 */
export function checkStatedVersion(
  repository: string,
  tag: string,
  digest: string,
  manifest: Record<string, unknown>,
): void {
  const annotations = manifest.annotations as Record<string, unknown> | undefined
  const stated = annotations?.[ANNOTATIONS.version]
  if (typeof stated !== 'string' || stated === '') return
  if (stated.replace(/^v/, '') === tag) return
  throw new InvalidInputError(
    'VersionMismatch',
    `${repository}:${tag} points at ${digest}, which is version ${stated} by its own annotation, not ${tag}: `
    + 'a release re-tagged under another version; refusing it (re-publish it as what it is)',
  )
}

/** A known digest (from history) as a resolved artifact, without consulting tags. */
export async function resolveDigest(
  repository: string,
  version: string,
  digest: string,
  access: OrasOptions,
): Promise<Resolved> {
  const fetched = await fetchManifest(`${repository}@${digest}`, access)
  return { version, digest: fetched.digest, manifest: fetched.content }
}

function unpublished(message: string, cause?: unknown): WaitingError {
  return new WaitingError('VersionNotFound', message, UNPUBLISHED_RETRY_MS, { cause })
}
