/**
 * buildah, Debian's daemonless OCI image builder, with a store of the ground's own (under the cache, never the
 * machine's /var/lib/containers): the base images the Dockerfile names, berth's image and the node's pause image live
 * there. Every call goes through {@link buildah}, so each one uses the same store.
 */
import { mkdir, readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { execa, type Options } from 'execa'
import { EnvironmentError } from '../../shared/errors.ts'
import { cacheDir } from './parts.ts'

/** Where buildah keeps images and containers for the ground. */
export function imageStore(): { root: string; runroot: string } {
  return { root: join(cacheDir(), 'image', 'storage'), runroot: join(cacheDir(), 'image', 'run') }
}

const storeArgs = (): string[] => {
  const { root, runroot } = imageStore()
  return ['--root', root, '--runroot', runroot, '--storage-driver', 'overlay']
}

/**
 * Run buildah against the ground's store. Output goes to `log` when given (a failure shows its tail); the result's
 * stdout otherwise.
 */
export async function buildah(args: readonly string[], options: { log?: string; cwd?: string } = {}): Promise<string> {
  const io: Options = options.log
    ? { stdout: { file: options.log, append: true }, stderr: { file: options.log, append: true } }
    : {}
  if (options.log) await mkdir(dirname(options.log), { recursive: true })
  try {
    const result = await execa('buildah', [...storeArgs(), ...args], {
      stdin: 'ignore',
      ...(options.cwd ? { cwd: options.cwd } : {}),
      ...io,
    })
    return typeof result.stdout === 'string' ? result.stdout.trim() : ''
  } catch (error: unknown) {
    const tail = options.log
      ? (await readFile(options.log, 'utf8').catch(() => '')).trimEnd().split('\n').slice(-20).join('\n')
      : (error as { stderr?: string }).stderr ?? ''
    throw new EnvironmentError(
      'BuildFailed',
      `buildah ${args.slice(0, 2).join(' ')} failed${options.log ? ` (full log: ${options.log})` : ''}:\n${tail}`,
      { cause: error },
    )
  }
}

/** The value of label `key` on image `name` in the store, or undefined when the image (or the label) is not there. */
export async function imageLabel(name: string, key: string): Promise<string | undefined> {
  try {
    const out = await execa('buildah', [...storeArgs(), 'inspect', '--type', 'image', name], { stdin: 'ignore' })
    const image = JSON.parse(out.stdout) as { OCIv1?: { config?: { Labels?: Record<string, string> } } }
    return image.OCIv1?.config?.Labels?.[key]
  } catch {
    return undefined
  }
}

/** Whether buildah is on this machine. */
export async function haveBuildah(): Promise<boolean> {
  return (await execa('buildah', ['--version'], { reject: false, stdin: 'ignore' })).exitCode === 0
}
