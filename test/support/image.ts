/**
 * The Dockerfile's image laid out on disk, without a container engine (the machines have
 * none): each stage gets a folder as its root; COPY copies (from the build context, minus
 * .dockerignore, or from an earlier stage), RUN runs in the stage's working directory, and
 * stages given as `prebuilt` take ready files instead of running their RUN lines (the oras
 * stage: the ground has already built the same version from the same module). The final
 * stage's folder is the image; {@link ImageTree.path} maps its absolute paths onto it.
 */
import { copyFile, cp, mkdir, readFile, stat } from 'node:fs/promises'
import { dirname, join, matchesGlob, relative } from 'node:path'
import { execa } from 'execa'

export type ImageTree = {
  root: string
  env: Record<string, string>
  /** `USER uid:gid`, numeric. */
  user: { uid: number; gid: number } | undefined
  entrypoint: string[]
  cmd: string[]
  /** Every ARG with its default, from all stages. */
  args: Record<string, string>
  /** A path inside the image, as a path on this machine. */
  path: (inImage: string) => string
}

type Stage = { name: string; root: string; workdir: string; args: Record<string, string> }

/** Parse and lay out `dockerfile`; the result lives under `dir`. */
export async function layOutImage(
  dockerfile: string,
  context: string,
  dir: string,
  prebuilt: Record<string, Record<string, string>>,
): Promise<ImageTree> {
  const lines = (await readFile(dockerfile, 'utf8'))
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
  const ignored = (await readFile(join(context, '.dockerignore'), 'utf8').catch(() => ''))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
  const globalArgs: Record<string, string> = {}
  const stages: Stage[] = []
  const image = {
    env: {} as Record<string, string>,
    user: undefined as ImageTree['user'],
    entrypoint: [] as string[],
    cmd: [] as string[],
  }
  const sub = (text: string, args: Record<string, string>): string =>
    text.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a?: string, b?: string) => args[a ?? b ?? ''] ?? '')
  for (const line of lines) {
    const [instruction = '', ...rest] = line.split(/\s+/)
    const stage = stages.at(-1)
    const text = stage ? sub(rest.join(' '), stage.args) : rest.join(' ')
    switch (instruction.toUpperCase()) {
      case 'ARG': {
        const [name = '', value = ''] = text.split('=')
        if (stage) stage.args[name] = stage.args[name] ?? value
        else globalArgs[name] = value
        break
      }
      case 'FROM': {
        const name = /\bAS\s+(\S+)$/i.exec(text)?.[1] ?? `stage-${stages.length}`
        const root = join(dir, 'stages', name)
        stages.push({ name, root, workdir: '/', args: { ...globalArgs } })
        await mkdir(root, { recursive: true })
        for (const [file, source] of Object.entries(prebuilt[name] ?? {})) {
          await mkdir(dirname(join(root, file)), { recursive: true })
          await copyFile(source, join(root, file))
        }
        break
      }
      case 'WORKDIR':
        need(stage).workdir = text
        await mkdir(join(need(stage).root, text), { recursive: true })
        break
      case 'COPY':
        await copy(need(stage), stages, text, context, ignored)
        break
      case 'RUN':
        if (!prebuilt[need(stage).name])
          await execa('sh', ['-c', text], { cwd: join(need(stage).root, need(stage).workdir), env: { CI: 'true' } })
        break
      case 'ENV':
        for (const pair of text.match(/\w+=("[^"]*"|\S+)/g) ?? []) {
          const [key = '', value = ''] = pair.split(/=(.*)/s)
          image.env[key] = value.replace(/^"|"$/g, '')
        }
        break
      case 'USER': {
        const [uid, gid] = text.split(':').map(Number)
        image.user = { uid: uid ?? 0, gid: gid ?? uid ?? 0 }
        break
      }
      case 'ENTRYPOINT':
        image.entrypoint = JSON.parse(text) as string[]
        break
      case 'CMD':
        image.cmd = JSON.parse(text) as string[]
        break
      default:
        throw new Error(`the Dockerfile uses ${instruction}, which layOutImage does not know`)
    }
  }
  const final = need(stages.at(-1))
  const args = Object.assign({}, globalArgs, ...stages.map((s) => s.args)) as Record<string, string>
  return { root: final.root, ...image, args, path: (p) => join(final.root, p) }
}

async function copy(
  stage: Stage,
  stages: readonly Stage[],
  text: string,
  context: string,
  ignored: readonly string[],
): Promise<void> {
  const parts = text.split(/\s+/)
  const from = parts[0]?.startsWith('--from=') ? parts.shift()?.slice('--from='.length) : undefined
  const dest = parts.pop() ?? ''
  const target = join(stage.root, dest.startsWith('/') ? dest : join(stage.workdir, dest))
  const base = from ? need(stages.find((s) => s.name === from)).root : context
  for (const source of parts) {
    const path = join(base, source)
    // `COPY a b ./` puts files into the folder; `COPY dir ./dir` copies the folder's contents.
    const into
      = dest.endsWith('/') && !(await isDirectory(path)) ? join(target, source.split('/').at(-1) ?? source) : target
    await mkdir(dirname(into), { recursive: true })
    await cp(path, into, {
      recursive: true,
      filter: (file) => from !== undefined || !ignoredBy(relative(context, file), ignored),
    })
  }
}

function ignoredBy(file: string, patterns: readonly string[]): boolean {
  return file !== '' && patterns.some((p) => matchesGlob(file, p) || file.startsWith(`${p}/`))
}

async function isDirectory(path: string): Promise<boolean> {
  return (await stat(path)).isDirectory()
}

function need<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('the Dockerfile must start with FROM')
  return value
}
