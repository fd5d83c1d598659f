/**
 * `berth push`: publish a release as an immutable OCI artifact.
 *
 * The manifest is first written to a local OCI layout, so its digest is known before the
 * registry is touched. Then: the tag is free → copy the exact bytes up; the tag holds the
 * same digest → already published, success; the tag holds another digest → refuse, naming
 * both, and push nothing. A tag, once pushed, never points at other bytes.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import {
  ANNOTATIONS,
  type ArtifactMetadata,
  METADATA_FILE,
  metadataSchema,
  repositoryPath,
} from '../shared/artifact.ts'
import { InvalidInputError, UsageError } from '../shared/errors.ts'
import type { KeyObject } from 'node:crypto'
import { copyFromLayout, fetchManifest, listTags, loginInto, OrasError, type RegistryAccess } from '../shared/oras.ts'
import { writeLayout } from '../shared/oci-layout.ts'
import { previewOf, previewVersion, pullRequest } from '../shared/previews.ts'
import { loadConfig } from './config.ts'
import { packArchive } from './pack.ts'
import { renderRepository, versionTag } from './package.ts'
import type { RenderTools } from './render.ts'
import { provenance } from './provenance.ts'

export type PublishRequest = {
  /** A config repository folder (packaged first) or a tar.gz made by `berth package`. */
  input: string
  /** The release's version; or, with `preview`, none: the version is the pull request's next preview. */
  version?: string
  /** Publish a preview of this pull request: `0.0.0-pr.<preview>.<push>`, the push after the newest published. */
  preview?: number
  /** `oci://host/path`; default the config repository's `artifact.repository`. */
  repository?: string
  source?: string
  revision?: string
  allowSecrets?: boolean
  access?: RegistryAccess
  /** From the environment in CI; written to a temporary credentials file, never logged. */
  credentials?: { username: string; password: string }
  tools?: RenderTools
  progress?: (line: string) => void
  /**
   * Sign the pushed digest with this key (cosign's key-based format); also when already published. A promise is
   * awaited before anything is pushed: a key that cannot be read stops the release with nothing published.
   */
  signWith?: KeyObject | Promise<KeyObject>
}

export type PublishResult = {
  reference: string
  repository: string
  tag: string
  digest: string
  alreadyPublished: boolean
  annotations: Record<string, string>
  /** The signature manifest (`host/path:sha256-<hex>.sig`), when signed. */
  signature?: string
}

/** Layer title inside the manifest: fixed, so the digest never depends on a local file name. */
const LAYER_FILE = 'artifact.tgz'

export async function publish(request: PublishRequest): Promise<PublishResult> {
  const say = request.progress ?? ((): void => undefined)
  if ((request.version === undefined) === (request.preview === undefined))
    throw new UsageError('VersionOrPreview', 'give a release version (--version) or a pull request (--preview), one of them')
  const input = resolve(request.input)
  const info = await stat(input).catch(() => undefined)
  const isDir = info?.isDirectory() ?? false
  if (!isDir && !info?.isFile())
    throw new UsageError('NoInput', `${request.input} is neither a config repository folder nor a .tgz file`)

  // Signing is a module of its own, loaded only to sign: while the release renders, not after its push.
  const signing = request.signWith ? handledLater(import('../shared/signatures.ts')) : undefined
  const key = request.signWith ? handledLater(Promise.resolve(request.signWith)) : undefined
  const work = await mkdtemp(join(tmpdir(), 'berth-push-'))
  try {
    const config = isDir ? await loadConfig(input) : undefined
    const repositoryUrl = request.repository ?? config?.artifact.repository
    if (!repositoryUrl)
      throw new UsageError('NoRepository', 'pushing a .tgz needs --repository oci://<registry>/<path>')
    const repository = ociRepository(repositoryUrl)
    // A bad --version is refused before anything runs.
    const wanted = request.preview === undefined
      ? { release: versionTag(request.version ?? '') }
      : { preview: request.preview }
    // The renders start first, being the long pole; the registry is asked while they run.
    if (isDir) say(`packaging ${input}`)
    const rendering = isDir && config
      ? handledLater(
          renderRepository(input, config, {
            ...(request.allowSecrets ? { allowSecrets: true } : {}),
            ...(request.tools ? { tools: request.tools } : {}),
          }),
        )
      : undefined
    const access: RegistryAccess = { ...request.access }
    const loggedIn = handledLater(
      (async (): Promise<void> => {
        if (request.credentials) await loginInto(work, repository, request.credentials, access)
      })(),
    )
    // A preview's version is its pull request's next push: known once the registry has said which it holds.
    const tag = 'release' in wanted ? wanted.release : await nextPreview(repository, wanted.preview, access, loggedIn)
    const reference = `${repository}:${tag}`
    // Asked now, answered while the release is rendered and packed: neither waits for the other.
    const existing = handledLater(
      (async (): Promise<string | undefined> => {
        await loggedIn
        return await digestOf(reference, access)
      })(),
    )
    const asked = handledLater(
      provenance(isDir ? input : process.cwd(), {
        source: request.source ?? config?.artifact.source,
        revision: request.revision,
      }),
    )

    let layer: Buffer
    if (rendering) {
      const environments = await rendering
      const { revision, source } = await asked
      layer = (
        await packArchive(environments, {
          version: tag,
          ...(revision ? { revision } : {}),
          ...(source ? { source } : {}),
        })
      ).bytes
    } else {
      await checkPackedFile(input, tag)
      layer = await readFile(input)
    }
    const origin = await asked
    if (origin.createdFrom === 'now')
      say(
        'no SOURCE_DATE_EPOCH and no Git commit: stamping "created" with the current time, so a re-run gives another digest',
      )
    const annotations: Record<string, string> = {
      [ANNOTATIONS.version]: tag,
      [ANNOTATIONS.created]: origin.created,
      ...(origin.source ? { [ANNOTATIONS.source]: origin.source } : {}),
      ...(origin.revision ? { [ANNOTATIONS.revision]: origin.revision } : {}),
    }
    const layout = join(work, 'layout')
    const built = await writeLayout(layout, tag, { layer, title: LAYER_FILE, annotations })
    const signed = async (result: PublishResult): Promise<PublishResult> => {
      if (!key || !signing) return result
      const { signArtifact } = await signing
      const signature = await signArtifact(repository, result.digest, await key, access)
      say(`${signature.added ? 'signed' : 'already signed with this key:'} ${signature.reference}`)
      return { ...result, signature: signature.reference }
    }
    const held = await existing
    await key
    if (held === built.digest) {
      say(`${reference} is already published with this content`)
      return await signed({ reference, repository, tag, digest: built.digest, alreadyPublished: true, annotations })
    }
    if (held !== undefined) {
      throw new InvalidInputError(
        'TagExists',
        `${reference} already exists with digest ${held}; this release would be ${built.digest}. `
        + 'Published versions are immutable: release a new version instead of re-using this one.',
      )
    }
    say(`pushing ${reference} (${formatBytes(layer.length)})`)
    // The layout holds the manifest whose digest was checked above; oras copies those bytes as they are.
    const copied = copyFromLayout(`${layout}:${tag}`, reference, access)
    // Signed while the copy runs, so the tag is visible unsigned for as short a time as may be (a verifying
    // reconciler that resolves it meanwhile waits for its next pass). If the copy fails, a signature may have gone up
    // for bytes not there: harmless, and the retry pushes exactly those bytes (the build is reproducible) and finds
    // itself already signed.
    const [copy, result] = await Promise.allSettled([
      copied,
      signed({ reference, repository, tag, digest: built.digest, alreadyPublished: false, annotations }),
    ])
    if (copy.status === 'rejected') throw copy.reason
    if (result.status === 'rejected') throw result.reason
    return result.value
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/** `0.0.0-pr.<number>.<push>` for the push after the newest of pull request `number` in `repository`. */
async function nextPreview(
  repository: string,
  number: number,
  access: RegistryAccess,
  loggedIn: Promise<void>,
): Promise<string> {
  pullRequest(number)
  await loggedIn
  const pushes = (await listTags(repository, access)).flatMap((tag) => {
    const preview = previewOf(tag)
    return preview?.number === number ? [preview.push] : []
  })
  return previewVersion(number, Math.max(0, ...pushes) + 1)
}

/**
 * A promise started early and awaited later: marked handled now, so a failure while other work
 * runs first is not an unhandled rejection (which would end the process before that work's own
 * error is reported); awaiting it later still throws.
 */
function handledLater<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined)
  return promise
}

/** `oci://host/path` → `host/path`. */
export function ociRepository(url: string): string {
  const path = repositoryPath(url)
  if (!path)
    throw new UsageError(
      'InvalidRepository',
      `--repository "${url}" must be oci://<registry>/<path> with a lowercase path and no tag`,
    )
  return path
}

async function digestOf(reference: string, access: RegistryAccess): Promise<string | undefined> {
  try {
    return (await fetchManifest(reference, access)).digest
  } catch (error: unknown) {
    if (error instanceof OrasError && error.failure === 'not-found') return undefined
    throw error
  }
}

/** A .tgz given to push must be a berth package of this very version (or a plain Flux-style tar.gz). */
async function checkPackedFile(file: string, tag: string): Promise<void> {
  let metadata: string | undefined
  const { list: listTar } = await import('tar')
  try {
    await listTar({
      file,
      strict: true,
      onReadEntry: (entry) => {
        if (entry.path === METADATA_FILE) {
          const chunks: Buffer[] = []
          entry.on('data', (c: Buffer) => chunks.push(c))
          entry.on('end', () => {
            metadata = Buffer.concat(chunks).toString('utf8')
          })
        } else {
          entry.resume()
        }
      },
    })
  } catch (error: unknown) {
    throw new InvalidInputError(
      'InvalidArtifact',
      `${file} is not a readable tar.gz: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    )
  }
  if (metadata === undefined) return
  let parsed: ArtifactMetadata
  try {
    parsed = metadataSchema.parse(JSON.parse(metadata))
  } catch (error: unknown) {
    throw new InvalidInputError('InvalidArtifact', `${file}: ${METADATA_FILE} is not valid berth metadata`, {
      cause: error,
    })
  }
  if (parsed.version !== tag) {
    throw new InvalidInputError(
      'VersionMismatch',
      `${file} was packaged as version ${parsed.version}, not ${tag}: push it as ${parsed.version}, or package again with --version ${tag}`,
    )
  }
}

function formatBytes(bytes: number): string {
  return bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`
}
