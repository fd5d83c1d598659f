/**
 * Rendering one environment of a config repository into Kubernetes objects: a folder of
 * plain YAML read as is, a kustomize overlay through `kubectl kustomize`, a Helm chart
 * through `helm template`. Tools run with argument arrays; their stderr becomes the error.
 */
import { readdir, readFile, stat } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { execa, type ExecaError } from 'execa'
import { EnvironmentError, InvalidInputError } from '../shared/errors.ts'
import { type Located, parseManifests } from '../shared/manifests.ts'
import type { EnvironmentSource } from './config.ts'

export type RenderTools = {
  /** kubectl binary for kustomize overlays; default `$BERTH_KUBECTL`, then `kubectl`. */
  kubectl?: string
  /** helm binary for charts; default `$BERTH_HELM`, then `helm`. */
  helm?: string
}

/** Render environment `name` from `source`, paths relative to the config repository `root`. */
export async function renderEnvironment(
  root: string,
  name: string,
  source: EnvironmentSource,
  tools: RenderTools = {},
): Promise<Located[]> {
  if (source.manifests !== undefined) return await readManifestFolder(root, source.manifests)
  if (source.kustomize !== undefined) {
    const dir = await existingFolder(root, source.kustomize, `environments.${name}.kustomize`)
    const kubectl = tools.kubectl ?? process.env.BERTH_KUBECTL ?? 'kubectl'
    return parseManifests(
      await runTool(kubectl, ['kustomize', dir], `kustomize overlay ${source.kustomize}`),
      `${name}: kustomize ${source.kustomize}`,
    )
  }
  if (source.helm !== undefined) {
    const chart = await existingFolder(root, source.helm.chart, `environments.${name}.helm.chart`)
    const args = ['template', source.helm.releaseName ?? name, chart, '--include-crds']
    if (source.helm.namespace) args.push('--namespace', source.helm.namespace)
    for (const values of source.helm.values) args.push('--values', join(root, values))
    const helm = tools.helm ?? process.env.BERTH_HELM ?? 'helm'
    return parseManifests(
      await runTool(helm, args, `helm chart ${source.helm.chart}`),
      `${name}: helm ${source.helm.chart}`,
    )
  }
  throw new InvalidInputError('InvalidConfig', `environments.${name}: no source`)
}

async function existingFolder(root: string, path: string, field: string): Promise<string> {
  const dir = join(root, path)
  const info = await stat(dir).catch(() => undefined)
  if (!info?.isDirectory()) throw new InvalidInputError('InvalidConfig', `${field}: ${path} is not a folder in ${root}`)
  return dir
}

async function readManifestFolder(root: string, path: string): Promise<Located[]> {
  const dir = await existingFolder(root, path, 'manifests')
  const files = (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile() && /\.ya?ml$/.test(e.name))
    .map((e) => join(e.parentPath, e.name))
    .sort()
  const out: Located[] = []
  for (const file of files) out.push(...parseManifests(await readFile(file, 'utf8'), relative(root, file)))
  return out
}

async function runTool(binary: string, args: string[], what: string): Promise<string> {
  try {
    return (await execa(binary, args, { stdin: 'ignore' })).stdout
  } catch (error: unknown) {
    const failure = error as ExecaError
    if (failure.code === 'ENOENT')
      throw new EnvironmentError('MissingTool', `${binary} is needed to render the ${what} but was not found on PATH`, {
        cause: error,
      })
    const stderr = typeof failure.stderr === 'string' ? failure.stderr.trim() : ''
    throw new InvalidInputError('RenderFailed', `cannot render the ${what}: ${stderr || failure.shortMessage}`, {
      cause: error,
    })
  }
}
