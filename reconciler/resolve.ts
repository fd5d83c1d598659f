/**
 * Resolve an Environment's pin to one artifact: an exact version names its tag; a range
 * takes the highest tag that satisfies it (prereleases only when the range names one).
 * Either way the tag is then resolved to a digest, and a pinned digest must match.
 */
import semver from 'semver'
import { releaseTag } from '../shared/artifact.ts'
import { BerthError } from '../shared/errors.ts'
import { fetchManifest, listTags, type RegistryAccess } from '../shared/oras.ts'

/** The spec asks for something the registry does not have, or forbids what it has. */
export class ResolveError extends BerthError {}

export type Resolved = {
  version: string
  tag: string
  digest: string
  manifest: Record<string, unknown>
  fromRange: boolean
}

/** Pick the tag for `pin` among `tags`; pure, for unit tests. Undefined when none fits. */
export function chooseTag(pin: string, tags: readonly string[]): string | undefined {
  const exact = releaseTag(pin)
  if ('tag' in exact) return tags.includes(exact.tag) ? exact.tag : undefined
  const versions = tags.filter((t) => semver.valid(t) !== null && !t.includes('+'))
  return semver.maxSatisfying(versions, pin) ?? undefined
}

export async function resolve(
  repository: string,
  pin: string,
  expectedDigest: string | undefined,
  access: RegistryAccess,
): Promise<Resolved> {
  const exact = releaseTag(pin)
  let tag: string
  if ('tag' in exact) {
    tag = exact.tag
  } else {
    const tags = await listTags(repository, access)
    const chosen = chooseTag(pin, tags)
    if (!chosen)
      throw new ResolveError(
        'VersionNotFound',
        `no version in ${repository} satisfies "${pin}" (${tags.length} tags, none matching)`,
      )
    tag = chosen
  }
  let fetched
  try {
    fetched = await fetchManifest(`${repository}:${tag}`, access)
  } catch (error: unknown) {
    if (error instanceof BerthError && error.reason === 'ArtifactNotFound')
      throw new ResolveError('VersionNotFound', `version ${tag} is not published in ${repository}`, { cause: error })
    throw error
  }
  if (expectedDigest && fetched.digest !== expectedDigest) {
    throw new ResolveError(
      'DigestMismatch',
      `${repository}:${tag} now points at ${fetched.digest}, not the pinned ${expectedDigest}: the tag moved; refusing it`,
    )
  }
  return { version: tag, tag, digest: fetched.digest, manifest: fetched.content, fromRange: !('tag' in exact) }
}

/** A known digest (from history) as a resolved artifact, without consulting tags. */
export async function resolveDigest(
  repository: string,
  version: string,
  digest: string,
  access: RegistryAccess,
): Promise<Resolved> {
  const fetched = await fetchManifest(`${repository}@${digest}`, access)
  return { version, tag: version, digest: fetched.digest, manifest: fetched.content, fromRange: false }
}
