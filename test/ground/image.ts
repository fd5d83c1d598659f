/**
 * berth's image, built from the repository's Dockerfile by buildah exactly as a user builds it (no second build
 * path): the bases first (bases.ts), then `buildah build --pull=never --timestamp 0`, then a push to a registry.
 * `--timestamp 0` stamps every file and the image's creation time with the epoch, so two builds of one commit give
 * one digest.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { EnvironmentError } from '../../shared/errors.ts'
import { ensureBases } from './bases.ts'
import { buildah } from './buildah.ts'
import { cacheDir, type Say } from './parts.ts'

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url))

export type BuiltImage = {
  /** Name in the ground's buildah store. */
  local: string
  /** Image ID (config digest): equal IDs are equal images. */
  id: string
}

export type BuildOptions = {
  say: Say
  /** Make the bases and every build step again instead of reusing them. */
  noCache?: boolean
  /** Store name; `localhost/berth:<version>` by default. */
  tag?: string
}

/** Build the Dockerfile at the repository's root into the ground's store. */
export async function buildImage(options: BuildOptions): Promise<BuiltImage> {
  const dockerfile = join(REPO_ROOT, 'Dockerfile')
  await ensureBases(dockerfile, { say: options.say, noCache: options.noCache ?? false })
  const version = (JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version
  const local = options.tag ?? `localhost/berth:${version}`
  const log = join(cacheDir(), 'logs', 'image-build.log')
  const trust = await machineTrust()
  await buildah(
    [
      'build',
      '--pull=never',
      '--timestamp',
      '0',
      // Reuse unchanged steps between builds (buildah's default is to cache nothing); --no-cache runs each again.
      '--layers',
      ...(options.noCache ? ['--no-cache'] : []),
      // A failed step leaves no working container behind in the store.
      '--force-rm',
      // crun refuses this machine's hybrid cgroups (v1 with an empty v2 mount); runc runs the RUN steps.
      '--runtime',
      'runc',
      // RUN steps fetch Go modules and npm packages; they bind nothing.
      '--network',
      'host',
      ...trust.volumes,
      '--file',
      dockerfile,
      '--tag',
      local,
      REPO_ROOT,
    ],
    { log },
  ).finally(trust.remove)
  const id = await buildah(['inspect', '--type', 'image', '--format', '{{.FromImageID}}', local])
  return { local, id }
}

/**
 * Where this machine reaches the internet through a TLS-inspecting proxy, its CA bundle (SSL_CERT_FILE) is what makes
 * the RUN steps' downloads verify. It is mounted into them for the build only (with an npmrc pointing npm at it), so
 * no layer of the image holds it and the Dockerfile stays the one users build.
 */
async function machineTrust(): Promise<{ volumes: string[]; remove: () => Promise<void> }> {
  const bundle = process.env.SSL_CERT_FILE
  if (!bundle || !(await readFile(bundle).then(() => true, () => false)))
    return { volumes: [], remove: () => Promise.resolve() }
  const dir = await mkdtemp(join(tmpdir(), 'berth-build-trust-'))
  await writeFile(join(dir, 'npmrc'), 'cafile=/etc/ssl/certs/ca-certificates.crt\n')
  return {
    volumes: [
      '--volume',
      `${bundle}:/etc/ssl/certs/ca-certificates.crt:ro`,
      '--volume',
      `${join(dir, 'npmrc')}:/root/.npmrc:ro`,
    ],
    remove: () => rm(dir, { recursive: true, force: true }),
  }
}

/**
 * Push `local` to `reference` (a plain-HTTP registry when `plainHTTP`); the digest of the manifest the registry now
 * serves.
 */
export async function pushImage(local: string, reference: string, plainHTTP: boolean): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-push-'))
  try {
    const digestFile = join(dir, 'digest')
    await buildah([
      'push',
      ...(plainHTTP ? ['--tls-verify=false'] : []),
      '--digestfile',
      digestFile,
      local,
      `docker://${reference}`,
    ])
    return (await readFile(digestFile, 'utf8')).trim()
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** What a node pulls for `reference@digest` from a plain-HTTP registry: the config and the compressed layers. */
export async function pulledBytes(reference: string, digest: string): Promise<number> {
  const slash = reference.indexOf('/')
  const host = reference.slice(0, slash)
  const repository = reference.slice(slash + 1).replace(/:[^:/]+$/, '')
  const response = await fetch(`http://${host}/v2/${repository}/manifests/${digest}`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  })
  if (!response.ok) throw new EnvironmentError('PushFailed', `${reference}@${digest}: the registry answered ${response.status}`)
  const manifest = (await response.json()) as { config: { size: number }; layers: Array<{ size: number }> }
  return manifest.layers.reduce((sum, layer) => sum + layer.size, manifest.config.size)
}

/** `1.5` for 1.5 MiB and up to one decimal, as the one line `npm run image` prints. */
export function mebibytes(bytes: number): string {
  return String(Math.round((bytes / 2 ** 20) * 10) / 10)
}
