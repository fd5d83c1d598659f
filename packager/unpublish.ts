/**
 * `berth unpublish --preview N`: delete pull request N's previews from the registry, once it is closed. Only tags of
 * the preview form `0.0.0-pr.N.K` are candidates, and each is deleted only when its manifest says it is that very
 * version (`org.opencontainers.image.version`): a release, or a manifest another tag was pointed at by hand, is never
 * deleted this way. Signatures and attestations of a deleted digest go with it.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ANNOTATIONS } from '../shared/artifact.ts'
import { InvalidInputError } from '../shared/errors.ts'
import { deleteManifest, fetchManifest, listTags, loginInto, OrasError, type RegistryAccess } from '../shared/oras.ts'
import { previewOf, pullRequest } from '../shared/previews.ts'

export type UnpublishRequest = {
  /** `host/path`. */
  repository: string
  preview: number
  access?: RegistryAccess
  credentials?: { username: string; password: string }
  progress?: (line: string) => void
}

/** Delete pull request `preview`'s previews; returns the versions deleted (none: nothing was there). */
export async function unpublishPreviews(request: UnpublishRequest): Promise<string[]> {
  const { repository } = request
  const preview = pullRequest(request.preview)
  const work = await mkdtemp(join(tmpdir(), 'berth-unpublish-'))
  try {
    const access: RegistryAccess = { ...request.access }
    if (request.credentials) await loginInto(work, repository, request.credentials, access)
    const tags = await listTags(repository, access)
    const pushOf = (tag: string): number => previewOf(tag)?.push ?? 0
    const previews = tags.filter((tag) => previewOf(tag)?.number === preview).sort((a, b) => pushOf(a) - pushOf(b))
    const deleted: string[] = []
    for (const tag of previews) {
      const manifest = await fetchManifest(`${repository}:${tag}`, access)
      const annotations = (manifest.content.annotations ?? {}) as Record<string, string>
      if (annotations[ANNOTATIONS.version] !== tag) {
        throw new InvalidInputError(
          'NotAPreview',
          `${repository}:${tag} points at a manifest made as ${annotations[ANNOTATIONS.version] ?? 'no stated version'}, `
          + 'not as this preview: nothing of it was deleted. Delete it by hand if it is meant',
        )
      }
      // Signatures and attestations first: a signature left without its artifact would name nothing.
      const hex = manifest.digest.slice('sha256:'.length)
      for (const suffix of ['sig', 'att']) {
        if (tags.includes(`sha256-${hex}.${suffix}`)) await deleteManifest(`${repository}:sha256-${hex}.${suffix}`, access)
      }
      await deleteManifest(`${repository}@${manifest.digest}`, access).catch((error: unknown) => {
        // Two tags of one manifest: the first delete took both.
        if (!(error instanceof OrasError && error.failure === 'not-found')) throw error
      })
      request.progress?.(`deleted ${repository}:${tag} (${manifest.digest})`)
      deleted.push(tag)
    }
    return deleted
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}
