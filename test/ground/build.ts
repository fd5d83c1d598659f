/**
 * Makes every part of the test ground present on this machine, building only what is
 * missing: Debian's docker-registry through apt, oras/etcd/kube-apiserver from Go modules
 * into the version-keyed cache. Build output goes to a log file; a failure shows its tail.
 */
import { access, constants, cp, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { execa } from 'execa'
import { EnvironmentError } from '../../shared/errors.ts'
import { ensureBases } from './bases.ts'
import { NODE_TOOLS } from './node.ts'
import { binaryPath, cacheDir, FLUX_VERSION, GO_PARTS, GROUND_DIR, type GoPart, type Say } from './parts.ts'

export type { Say } from './parts.ts'

/** Commands the ground needs from the machine, and the Debian package that provides each. */
const APT_TOOLS: ReadonlyArray<{ command: string; pkg: string }> = [
  { command: 'docker-registry', pkg: 'docker-registry' },
  { command: 'openssl', pkg: 'openssl' },
  // A real forward proxy for the HTTPS_PROXY tests; zsh and fish to check the completion scripts.
  { command: 'tinyproxy', pkg: 'tinyproxy' },
  { command: 'zsh', pkg: 'zsh' },
  { command: 'fish', pkg: 'fish' },
  // berth's image: buildah builds the Dockerfile, mmdebstrap makes the base images' Debian root.
  { command: 'buildah', pkg: 'buildah' },
  { command: 'mmdebstrap', pkg: 'mmdebstrap' },
  // SOPS: age keys and recipients for the files the real sops encrypts.
  { command: 'age', pkg: 'age' },
  // Metric gates: a real Prometheus scraping a real Pushgateway the tests push values to.
  { command: 'prometheus', pkg: 'prometheus' },
  { command: 'prometheus-pushgateway', pkg: 'prometheus-pushgateway' },
  // The real node: containerd, runc, the CNI plugins, iptables for kube-proxy.
  ...NODE_TOOLS,
]

export type PartLocations = {
  oras: string
  helm: string
  actionlint: string
  cosign: string
  sops: string
  age: string
  ageKeygen: string
  kwok: string
  etcd: string
  kubeApiserver: string
  kubeControllerManager: string
  kubeScheduler: string
  kubelet: string
  kubeProxy: string
  pause: string
  registry: string
  prometheus: string
  pushgateway: string
  openssl: string
  kubectl: string
}

/**
 * Ensure every part exists, building what is missing; returns where each one is. With `bases` (npm run testground,
 * as CI runs it), also the base images berth's Dockerfile names — not on every ground start: checking them hashes the
 * Node and Go binaries, and only an image build needs them (it makes them itself when missing).
 */
export async function ensureParts(say: Say, options: { bases?: boolean } = {}): Promise<PartLocations> {
  await ensureAptTools(say)
  // The Go builds take the CPU; making the base images mostly waits on Debian's mirror: both at once.
  await Promise.all([
    (async () => {
      for (const part of GO_PARTS) await ensureGoPart(part, say)
    })(),
    options.bases ? ensureBases(join(GROUND_DIR, '..', '..', 'Dockerfile'), { say }) : undefined,
  ])
  const kubectl = await which('kubectl')
  if (!kubectl) {
    throw new EnvironmentError(
      'MissingTool',
      'kubectl is not on PATH; the proof tests read objects back with it. Install kubectl (v1.27 or newer) and run again.',
    )
  }
  return {
    oras: binaryPath({ name: 'oras', version: partVersion('oras') }),
    helm: binaryPath({ name: 'helm', version: partVersion('helm') }),
    actionlint: binaryPath({ name: 'actionlint', version: partVersion('actionlint') }),
    cosign: binaryPath({ name: 'cosign', version: partVersion('cosign') }),
    sops: binaryPath({ name: 'sops', version: partVersion('sops') }),
    age: (await which('age')) ?? 'age',
    ageKeygen: (await which('age-keygen')) ?? 'age-keygen',
    etcd: binaryPath({ name: 'etcd', version: partVersion('etcd') }),
    kubeApiserver: binaryPath({ name: 'kube-apiserver', version: partVersion('kube-apiserver') }),
    kubeControllerManager: binaryPath({ name: 'kube-controller-manager', version: partVersion('kube-controller-manager') }),
    kubeScheduler: binaryPath({ name: 'kube-scheduler', version: partVersion('kube-scheduler') }),
    kubelet: binaryPath({ name: 'kubelet', version: partVersion('kubelet') }),
    kubeProxy: binaryPath({ name: 'kube-proxy', version: partVersion('kube-proxy') }),
    pause: binaryPath({ name: 'pause', version: partVersion('pause') }),
    kwok: binaryPath({ name: 'kwok', version: partVersion('kwok') }),
    registry: (await which('docker-registry')) ?? 'docker-registry',
    prometheus: (await which('prometheus')) ?? 'prometheus',
    pushgateway: (await which('prometheus-pushgateway')) ?? 'prometheus-pushgateway',
    openssl: (await which('openssl')) ?? 'openssl',
    kubectl,
  }
}

function partVersion(name: GoPart['name']): string {
  return GO_PARTS.find((p) => p.name === name)?.version ?? ''
}

async function which(command: string): Promise<string | undefined> {
  if (command.startsWith('/')) return (await isExecutable(command)) ? command : undefined
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue
    const candidate = join(dir, command)
    if (await isExecutable(candidate)) return candidate
  }
  return undefined
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

async function ensureAptTools(say: Say): Promise<void> {
  const missing: string[] = []
  for (const tool of APT_TOOLS) if (!(await which(tool.command))) missing.push(tool.pkg)
  if (missing.length === 0) return
  if (process.getuid?.() !== 0) {
    throw new EnvironmentError(
      'MissingTool',
      `missing Debian packages: ${missing.join(', ')}. Install them with: sudo apt-get install -y ${missing.join(' ')}`,
    )
  }
  say(`installing ${missing.join(', ')} with apt-get`)
  const log = join(cacheDir(), 'logs', 'apt.log')
  await runLogged('apt-get', ['update', '-qq'], { log })
  await runLogged('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
    log,
    // Debian's docker-registry package would start its own service; policy-rc.d or no
    // systemd stops that on these machines, and the ground never uses it anyway.
    env: { DEBIAN_FRONTEND: 'noninteractive' },
  })
}

async function ensureGoPart(part: GoPart, say: Say): Promise<void> {
  const target = binaryPath(part)
  if (await isExecutable(target)) return
  const started = Date.now()
  say(`building ${part.name} ${part.version} (first time on this machine; cached afterwards)`)
  await mkdir(dirname(target), { recursive: true })
  const partial = `${target}.partial`
  await rm(partial, { force: true })
  const log = join(cacheDir(), 'logs', `${part.name}-${part.version}.log`)
  const env = { CGO_ENABLED: '0', GOFLAGS: '-mod=readonly' }
  if (part.build.kind === 'install') {
    const gobin = `${dirname(target)}/.gobin`
    await runLogged('go', ['install', '-trimpath', '-ldflags=-s -w', part.build.pkg], {
      log,
      env: { ...env, GOBIN: gobin },
    })
    await rename(join(gobin, part.name), partial)
    await rm(gobin, { recursive: true, force: true })
  } else {
    await runLogged('go', ['build', '-trimpath', `-ldflags=${part.build.ldflags}`, '-o', partial, part.build.pkg], {
      log,
      env,
      cwd: part.build.moduleDir,
    })
  }
  // Rename last: an interrupted build never leaves a binary that looks finished.
  await rename(partial, target)
  say(`built ${part.name} ${part.version} in ${Math.round((Date.now() - started) / 1000)} s → ${target}`)
}

async function runLogged(
  command: string,
  args: string[],
  options: { log: string; env?: Record<string, string>; cwd?: string },
): Promise<void> {
  await mkdir(dirname(options.log), { recursive: true })
  const log = { file: options.log, append: true } as const
  try {
    await execa(command, args, {
      ...(options.cwd ? { cwd: options.cwd } : {}),
      ...(options.env ? { env: options.env } : {}),
      stdin: 'ignore',
      stdout: log,
      stderr: log,
    })
  } catch (error: unknown) {
    const text = await readFile(options.log, 'utf8').catch(() => '')
    const tail = text.trimEnd().split('\n').slice(-15).join('\n')
    throw new EnvironmentError(
      'BuildFailed',
      `${command} ${args.join(' ')} failed (full log: ${options.log}):\n${tail}`,
      { cause: error },
    )
  }
}

/**
 * The flux CLI, for the packager benchmark only (never built by the tests). `go install` of
 * flux2 fails (a replace line, and an embedded manifests/ folder the module zip lacks), so it is
 * built inside a writable copy of the downloaded module with a placeholder manifest.
 */
export async function ensureFlux(say: Say): Promise<string> {
  const part = { name: 'flux', version: FLUX_VERSION }
  const target = join(cacheDir(), part.name, part.version, part.name)
  if (await isExecutable(target)) return target
  const started = Date.now()
  say(`building flux ${FLUX_VERSION} for the benchmark (first time on this machine, a few minutes; cached afterwards)`)
  const log = join(cacheDir(), 'logs', `flux-${FLUX_VERSION}.log`)
  const module = `github.com/fluxcd/flux2/v2@${FLUX_VERSION}`
  await mkdir(dirname(log), { recursive: true })
  const { stdout } = await execa('go', ['mod', 'download', '-json', module], { stdin: 'ignore' })
  const dir = (JSON.parse(stdout) as { Dir: string }).Dir
  const source = join(dirname(target), 'src')
  await rm(source, { recursive: true, force: true })
  await cp(dir, source, { recursive: true })
  await chmodTree(source)
  await mkdir(join(source, 'cmd', 'flux', 'manifests'), { recursive: true })
  await writeFile(join(source, 'cmd', 'flux', 'manifests', 'placeholder.yaml'), '# the benchmark installs nothing\n')
  const partial = `${target}.partial`
  await runLogged('go', ['build', '-trimpath', '-ldflags=-s -w', '-o', partial, './cmd/flux'], {
    log,
    env: { CGO_ENABLED: '0', GOFLAGS: '-mod=mod' },
    cwd: source,
  })
  await rename(partial, target)
  await rm(source, { recursive: true, force: true })
  say(`built flux ${FLUX_VERSION} in ${Math.round((Date.now() - started) / 1000)} s → ${target}`)
  return target
}

// The module cache is read-only; the copy must take the placeholder and go's writes.
async function chmodTree(dir: string): Promise<void> {
  await execa('chmod', ['-R', 'u+w', dir])
}
