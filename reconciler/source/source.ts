/**
 * An Environment's source: where its artifacts are and how to reach them, and the objects one
 * resolved artifact holds for it. The reconcile pass, `promote --dry-run` and the CLI's
 * "is it published?" check all go through here, so they read the same registry the same way
 * (credentials from `spec.source.secretRef` included).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sha256Digest } from '../../shared/artifact.ts'
import { InvalidInputError } from '../../shared/errors.ts'
import type { Kube } from '../../shared/kube.ts'
import { checkObjects, type Located, parseManifests } from '../../shared/manifests.ts'
import type { OrasOptions } from '../../shared/oras.ts'
import { type EnvironmentSpec, sourceOf } from '../../api/environment.ts'
import { fetchArtifact } from './fetch.ts'
import type { Resolved } from './resolve.ts'

/**
 * A repository and how to reach it; `close` removes the credentials written for it. `reach`
 * tells apart ways of reaching it (TLS settings, which credentials): only lookups made the same
 * way are shared.
 */
export type Source = { repository: string; access: OrasOptions; reach: string; close: () => Promise<void> }

type DockerConfigSecret = { type?: string; data?: Record<string, string> }

/**
 * Open the source of `spec` (an Environment in `namespace`). A `secretRef` becomes a
 * credentials file that lives until `close`; `extra` adds access options (a cancel signal, or a
 * CLI's `--registry-config`, which then wins over the Secret).
 */
export async function openSource(
  kube: Kube,
  namespace: string,
  spec: Pick<EnvironmentSpec, 'source'>,
  extra: OrasOptions = {},
): Promise<Source> {
  const { repository, access } = sourceOf(spec, extra)
  const ref = spec.source.secretRef
  const how = `${access.plainHttp ? 'http' : 'https'}${access.insecure ? '-insecure' : ''}`
  if (!ref || extra.registryConfig) {
    return { repository, access, reach: `${how}|${extra.registryConfig ?? ''}`, close: () => Promise.resolve() }
  }
  const secret = await kube.get<DockerConfigSecret>({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: ref.name, namespace },
  })
  const config = secret?.data?.['.dockerconfigjson']
  if (!secret || secret.type !== 'kubernetes.io/dockerconfigjson' || !config) {
    throw new InvalidInputError(
      'InvalidSecret',
      `spec.source.secretRef: Secret ${namespace}/${ref.name} must exist with type kubernetes.io/dockerconfigjson `
      + 'and a .dockerconfigjson key',
    )
  }
  const dir = await mkdtemp(join(tmpdir(), 'berth-auth-'))
  const file = join(dir, 'config.json')
  await writeFile(file, Buffer.from(config, 'base64'), { mode: 0o600 })
  return {
    repository,
    access: { ...access, registryConfig: file },
    // The credentials themselves, hashed: two Secrets with the same content reach the registry alike.
    reach: `${how}|${sha256Digest(Buffer.from(config))}`,
    close: () => rm(dir, { recursive: true, force: true }),
  }
}

/** The objects `resolved` holds for the folder `path`: fetched by digest, verified, parsed and checked. */
export async function loadObjects(
  source: Source,
  resolved: Resolved,
  path: string,
  cacheDir: string,
): Promise<Located[]> {
  const files = await fetchArtifact(source.repository, resolved, source.access, cacheDir)
  return selectObjects(files, path)
}

/** The objects of one environment's folder: every YAML file below `path`, parsed and checked. */
export function selectObjects(files: ReadonlyMap<string, Buffer>, path: string): Located[] {
  const prefix = `${path.replace(/\/+$/, '')}/`
  const chosen = [...files.keys()].filter((f) => f.startsWith(prefix) && /\.(ya?ml|json)$/.test(f)).sort()
  if (chosen.length === 0) {
    const folders = [...new Set([...files.keys()].filter((f) => f.includes('/')).map((f) => f.split('/')[0]))]
    throw new InvalidInputError(
      'PathNotFound',
      `the artifact has no YAML under ${prefix} (it has: ${folders.join(', ') || 'no folders'}); set spec.path`,
    )
  }
  const objects = chosen.flatMap((f) => parseManifests(files.get(f)?.toString('utf8') ?? '', f))
  // Secrets were the packager's decision to allow; here only duplicates matter.
  checkObjects(objects, { allowSecrets: true })
  return objects
}
