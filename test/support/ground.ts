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
import type { GroundInfo, RegistryInfo } from '../ground/ground.ts'

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

/** Call at the top of a test file: `const g = useGround(import.meta.url)`. */
export function useGround(fileUrl: string): FileGround {
  const ground = inject('ground')
  const slug = basename(fileURLToPath(fileUrl)).replace(/\.test\.ts$/, '').replace(/[^a-z0-9]+/g, '-').slice(0, 40)
  const suffix = randomBytes(3).toString('hex')
  const namespace = `t-${slug}-${suffix}`
  const repository = `t/${slug}-${suffix}`
  // The parts the code under test runs, from the ground's cache rather than whatever is on PATH.
  process.env.BERTH_ORAS = ground.parts.oras
  process.env.BERTH_HELM = ground.parts.helm
  process.env.BERTH_KUBECTL = ground.parts.kubectl
  let kube: Kube | undefined
  let scratch: string | undefined

  beforeAll(async () => {
    kube = new Kube(loadKubeConfig({ kubeconfig: ground.kubeconfig }))
    scratch = await mkdtemp(join(tmpdir(), `berth-${slug}-`))
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } })
  })
  afterAll(async () => {
    // No namespace controller runs on the ground, so the namespace stays Terminating; the
    // ground is dropped after the run anyway. Deleting still proves nothing leaks by name.
    await kube?.delete({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } })
    if (scratch) await rm(scratch, { recursive: true, force: true })
  })

  return {
    ground,
    namespace,
    repository,
    scratch: () => required(scratch, 'scratch'),
    kube: () => required(kube, 'kube'),
    kubectl: async (args) => (await execa(ground.parts.kubectl, ['--kubeconfig', ground.kubeconfig, ...args])).stdout,
    orasAccess: (registry) => (registry.tls ? { caFile: ground.ca.cert } : { plainHttp: true }),
  }
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is set up in beforeAll; use it inside a test or hook`)
  return value
}

/** Folder of the repository root. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
