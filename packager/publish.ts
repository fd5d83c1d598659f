/**
 * `berth push`: publish a release as an immutable OCI artifact.
 *
 * The manifest is first built in a local OCI layout, so its digest is known before the
 * registry is touched. Then: the tag is free → copy the exact bytes up; the tag holds the
 * same digest → already published, success; the tag holds another digest → refuse, naming
 * both, and push nothing. A tag, once pushed, never points at other bytes.
 */
import { copyFile, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { list as listTar } from 'tar'
import {
  ANNOTATIONS,
  type ArtifactMetadata,
  MEDIA_TYPES,
  METADATA_FILE,
  metadataSchema,
  repositoryPath,
} from '../shared/artifact.ts'
import { InvalidInputError, UsageError } from '../shared/errors.ts'
import type { KeyObject } from 'node:crypto'
import { copyFromLayout, fetchManifest, login, OrasError, type RegistryAccess, push } from '../shared/oras.ts'
import { loadConfig } from './config.ts'
import { packageRepository, versionTag } from './package.ts'
import type { RenderTools } from './render.ts'
import { provenance } from './provenance.ts'

export type PublishRequest = {
  /** A config repository folder (packaged first) or a tar.gz made by `berth package`. */
  input: string
  version: string
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
  /** Sign the pushed digest with this key (cosign's key-based format); also when already published. */
  signWith?: KeyObject
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
const CONFIG_FILE = 'config.json'

export async function publish(request: PublishRequest): Promise<PublishResult> {
  const say = request.progress ?? ((): void => undefined)
  const tag = versionTag(request.version)
  const input = resolve(request.input)
  const info = await stat(input).catch(() => undefined)
  const isDir = info?.isDirectory() ?? false
  if (!isDir && !info?.isFile())
    throw new UsageError('NoInput', `${request.input} is neither a config repository folder nor a .tgz file`)

  const work = await mkdtemp(join(tmpdir(), 'berth-push-'))
  try {
    const config = isDir ? await loadConfig(input) : undefined
    const repositoryUrl = request.repository ?? config?.artifact.repository
    if (!repositoryUrl)
      throw new UsageError('NoRepository', 'pushing a .tgz needs --repository oci://<registry>/<path>')
    const repository = ociRepository(repositoryUrl)
    const origin = await provenance(isDir ? input : process.cwd(), {
      source: request.source ?? config?.artifact.source,
      revision: request.revision,
    })
    if (origin.createdFrom === 'now')
      say(
        'no SOURCE_DATE_EPOCH and no Git commit: stamping "created" with the current time, so a re-run gives another digest',
      )

    const layer = join(work, LAYER_FILE)
    if (isDir) {
      say(`packaging ${input}`)
      await packageRepository({
        dir: input,
        ...(config ? { config } : {}),
        version: tag,
        out: layer,
        ...(request.allowSecrets ? { allowSecrets: true } : {}),
        ...(origin.revision ? { revision: origin.revision } : {}),
        ...(origin.source ? { source: origin.source } : {}),
        ...(request.tools ? { tools: request.tools } : {}),
      })
    } else {
      await checkPackedFile(input, tag)
      await copyFile(input, layer)
    }
    // Flux's config media type with an empty JSON object, as `flux push artifact` writes it.
    await writeFile(join(work, CONFIG_FILE), '{}')
    const annotations: Record<string, string> = {
      [ANNOTATIONS.version]: tag,
      [ANNOTATIONS.created]: origin.created,
      ...(origin.source ? { [ANNOTATIONS.source]: origin.source } : {}),
      ...(origin.revision ? { [ANNOTATIONS.revision]: origin.revision } : {}),
    }
    const layout = join(work, 'layout')
    const access: RegistryAccess = { ...request.access }
    const reference = `${repository}:${tag}`
    // The manifest is built locally while the registry is asked what the tag holds: neither waits for the other.
    const [built, existing] = await Promise.all([
      push(
        `${layout}:${tag}`,
        {
          files: [{ path: LAYER_FILE, mediaType: MEDIA_TYPES.content }],
          config: { path: CONFIG_FILE, mediaType: MEDIA_TYPES.config },
          annotations,
        },
        { cwd: work, ociLayout: true },
      ),
      (async (): Promise<string | undefined> => {
        if (request.credentials) {
          access.registryConfig = join(work, 'registry-auth.json')
          await login(repository.split('/')[0] ?? repository, request.credentials, access)
        }
        return await digestOf(reference, access)
      })(),
    ])
    const signed = async (result: PublishResult): Promise<PublishResult> => {
      if (!request.signWith) return result
      const { signArtifact } = await import('../shared/signatures.ts')
      const signature = await signArtifact(repository, result.digest, request.signWith, access)
      say(`${signature.added ? 'signed' : 'already signed with this key:'} ${signature.reference}`)
      return { ...result, signature: signature.reference }
    }
    if (existing === built.digest) {
      say(`${reference} is already published with this content`)
      return await signed({ reference, repository, tag, digest: built.digest, alreadyPublished: true, annotations })
    }
    if (existing !== undefined) {
      throw new InvalidInputError(
        'TagExists',
        `${reference} already exists with digest ${existing}; this release would be ${built.digest}. `
        + 'Published versions are immutable: release a new version instead of re-using this one.',
      )
    }
    const size = (await stat(layer)).size
    say(`pushing ${reference} (${formatBytes(size)})`)
    // The layout holds the manifest whose digest was checked above; oras copies those bytes as they are.
    await copyFromLayout(`${layout}:${tag}`, reference, access)
    return await signed({ reference, repository, tag, digest: built.digest, alreadyPublished: false, annotations })
  } finally {
    await rm(work, { recursive: true, force: true })
  }
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
