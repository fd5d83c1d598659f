/**
 * `berth package`: render every environment of a config repository, check every object,
 * and write the reproducible tar.gz. Nothing is written unless everything passes.
 */
import { rename, rm } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { releaseTag } from '../shared/artifact.ts'
import { UsageError } from '../shared/errors.ts'
import { checkObjects } from '../shared/manifests.ts'
import { loadConfig, type PackageConfig } from './config.ts'
import { pack, type Packed, type RenderedEnvironment } from './pack.ts'
import { attachSopsSources } from './sops-sources.ts'
import { renderEnvironment, type RenderTools } from './render.ts'

export type PackageRequest = {
  dir: string
  /** berth.yaml when the caller has read it already; read from `dir` otherwise. */
  config?: PackageConfig
  version: string
  /** Output file; default {@link defaultOutput} in the working folder. */
  out?: string
  allowSecrets?: boolean
  revision?: string
  source?: string
  tools?: RenderTools
}

export type PackageResult = Packed & { tag: string; config: PackageConfig }

/** Validate the version, then render, check and pack. */
export async function packageRepository(request: PackageRequest): Promise<PackageResult> {
  const tag = versionTag(request.version)
  const dir = resolve(request.dir)
  const config = request.config ?? (await loadConfig(dir))
  const environments = await renderRepository(dir, config, request)
  const out = resolve(request.out ?? defaultOutput(tag))
  // Written beside the target and renamed: a failure never leaves a half-written artifact.
  const partial = join(dirname(out), `.${tag}.${process.pid}.partial.tgz`)
  try {
    const packed = await pack(environments, {
      version: tag,
      ...(request.revision ? { revision: request.revision } : {}),
      ...(request.source ? { source: request.source } : {}),
    }, partial)
    await rename(partial, out)
    return { ...packed, file: out, tag, config }
  } finally {
    await rm(partial, { force: true })
  }
}

/** Render every environment and check its objects; throws before anything is packed. */
export async function renderRepository(
  dir: string,
  config: PackageConfig,
  options: { allowSecrets?: boolean; tools?: RenderTools } = {},
): Promise<RenderedEnvironment[]> {
  const environments: RenderedEnvironment[] = []
  let index: Parameters<typeof attachSopsSources>[2]
  // Rendering runs a tool per environment (kubectl kustomize, helm template): all at once, not one after another.
  const renders = Object.entries(config.environments).map(([name, source]) => {
    const rendering = renderEnvironment(dir, name, source, options.tools)
    rendering.catch(() => undefined)
    return [name, rendering] as const
  })
  for (const [name, rendering] of renders) {
    const rendered = await rendering
    checkObjects(rendered, { allowSecrets: options.allowSecrets ?? false })
    // SOPS Secrets stay encrypted; the files SOPS wrote go along, byte for byte, for their MAC.
    const sops = await attachSopsSources(dir, rendered, index)
    index = sops.index
    environments.push({ name, objects: sops.objects, ...(sops.files.size > 0 ? { sopsFiles: sops.files } : {}) })
  }
  return environments
}

export function defaultOutput(tag: string): string {
  return `berth-${tag}.tgz`
}

/** The OCI tag for `version`, or a usage error saying what is wrong. */
export function versionTag(version: string): string {
  const result = releaseTag(version)
  if ('problem' in result) throw new UsageError('InvalidVersion', `--version ${result.problem}`)
  return result.tag
}
