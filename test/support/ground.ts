/**
 * What a test file gets from the running ground: the ground itself, a namespace and a
 * registry repository of its own (so files run in parallel without seeing each other),
 * a {@link Kube} client as cluster admin, and helpers for kubectl and oras.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import { afterAll, beforeAll, inject } from 'vitest'
import { Kube, loadKubeConfig } from '../../shared/kube.ts'
import type { OrasOptions } from '../../shared/oras.ts'
import { type GroundInfo, type RegistryInfo, startGround, stopGround } from '../ground/ground.ts'

export type FileGround = {
  ground: GroundInfo
  /** Namespace created for this file (deleted after it). */
  namespace: string
  /** Registry repository path for this file, e.g. `t/oras-roundtrip-3f9a`. */
  repository: string
  /** A scratch folder for this file (removed after it). */
  scratch: () => string
  kube: () => Kube
  /** `kubectl …` as cluster admin against the ground. */
  kubectl: (args: readonly string[]) => Promise<string>
  /** oras options that reach `registry` (plain HTTP or the ground's CA). */
  orasAccess: (registry: RegistryInfo) => OrasOptions
}

/**
 * Call at the top of a test file: `const g = useGround(import.meta.url)`. With `own`, the file starts a ground of its
 * own (before its first test, stopped after its last) instead of using the run's shared one: the real node's tests do,
 * since a real node's kube-proxy owns machine-wide rules and two may not run at once.
 */
export function useGround(fileUrl: string, own?: { node: boolean }): FileGround {
  let ground: GroundInfo | undefined = own ? undefined : inject('ground')
  const slug = basename(fileURLToPath(fileUrl)).replace(/\.test\.ts$/, '').replace(/[^a-z0-9]+/g, '-').slice(0, 40)
  const suffix = randomBytes(3).toString('hex')
  const namespace = `t-${slug}-${suffix}`
  const repository = `t/${slug}-${suffix}`
  // The parts the code under test runs, from the ground's cache rather than whatever is on PATH.
  const useParts = (parts: GroundInfo['parts']): void => {
    process.env.BERTH_ORAS = parts.oras
    process.env.BERTH_HELM = parts.helm
    process.env.BERTH_KUBECTL = parts.kubectl
  }
  if (ground) useParts(ground.parts)
  let kube: Kube | undefined
  let scratch: string | undefined

  beforeAll(async () => {
    if (own) {
      ground = await startGround({ say: (line) => process.stderr.write(`testground: ${line}\n`), node: own.node })
      useParts(ground.parts)
    }
    const g = required(ground, 'ground')
    kube = new Kube(loadKubeConfig({ kubeconfig: g.kubeconfig }))
    scratch = await mkdtemp(join(tmpdir(), `berth-${slug}-`))
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } })
  }, own ? 600_000 : undefined)
  afterAll(async () => {
    // No namespace controller runs on the ground, so the namespace stays Terminating; the
    // ground is dropped after the run anyway. Deleting still proves nothing leaks by name.
    await kube?.delete({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } })
    if (scratch) await rm(scratch, { recursive: true, force: true })
    if (own && ground) await stopGround(ground)
  }, own ? 120_000 : undefined)

  const at = (): GroundInfo => required(ground, 'ground')
  return {
    get ground() {
      return at()
    },
    namespace,
    repository,
    scratch: () => required(scratch, 'scratch'),
    kube: () => required(kube, 'kube'),
    kubectl: async (args) => (await execa(at().parts.kubectl, ['--kubeconfig', at().kubeconfig, ...args])).stdout,
    orasAccess: (registry) => (registry.tls ? { caFile: at().ca.cert } : { plainHttp: true }),
  }
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is set up in beforeAll; use it inside a test or hook`)
  return value
}

/** Folder of the repository root. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
