/**
 * The real parts of the test ground, pinned. A part's binary lives at
 * `<cache>/<name>/<version>/<name>`: a new version builds beside the old one, an unchanged
 * one is never built again.
 */
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Progress lines for people while parts are built or started. */
export type Say = (line: string) => void

export const KUBERNETES_VERSION = 'v1.36.3'
export const ETCD_VERSION = 'v3.6.16'
export const ORAS_VERSION = 'v1.3.6'
export const HELM_VERSION = 'v3.22.0'
export const ACTIONLINT_VERSION = 'v1.7.12'
export const COSIGN_VERSION = 'v2.6.1'
/** The real sops: tests encrypt with it and check berth decrypts to exactly what `sops --decrypt` prints. */
export const SOPS_VERSION = 'v3.13.3'
export const KWOK_VERSION = 'v0.7.0'
/** The flux CLI: the packager benchmark's anchor (`flux push artifact`); built only by that benchmark. */
export const FLUX_VERSION = 'v2.9.5'

/** Folder of this file: the Go modules that build kube-apiserver and etcd sit below it. */
export const GROUND_DIR = fileURLToPath(new URL('.', import.meta.url))

/**
 * Where built binaries and run state live. Outside the checkout by default so every clone on
 * the machine (CI clones afresh each run) shares one cache; `BERTH_CACHE_DIR=.cache` keeps it
 * in the git-ignored `.cache/` of the checkout instead.
 */
export function cacheDir(): string {
  const configured = process.env.BERTH_CACHE_DIR
  if (configured) return resolve(configured)
  const base = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache')
  return join(base, 'berth')
}

export type GoPart = {
  name:
    | 'kube-apiserver'
    | 'kube-controller-manager'
    | 'kube-scheduler'
    | 'kubelet'
    | 'kube-proxy'
    | 'pause'
    | 'etcd'
    | 'oras'
    | 'helm'
    | 'actionlint'
    | 'cosign'
    | 'sops'
    | 'kwok'
  version: string
  /** How to build it: `go install` of a module without replaces, or `go build` inside one of our modules. */
  build: { kind: 'install'; pkg: string } | { kind: 'module'; moduleDir: string; pkg: string; ldflags: string }
}

const k8sMinor = KUBERNETES_VERSION.split('.')[1] ?? ''

const K8S_LDFLAGS = [
  '-s -w',
  `-X k8s.io/component-base/version.gitVersion=${KUBERNETES_VERSION}`,
  '-X k8s.io/component-base/version.gitMajor=1',
  `-X k8s.io/component-base/version.gitMinor=${k8sMinor}`,
  '-X k8s.io/component-base/version.gitTreeState=clean',
].join(' ')

export const GO_PARTS: readonly GoPart[] = [
  {
    name: 'oras',
    version: ORAS_VERSION,
    build: { kind: 'install', pkg: `oras.land/oras/cmd/oras@${ORAS_VERSION}` },
  },
  {
    // Renders Helm-chart environments in the packager's tests.
    name: 'helm',
    version: HELM_VERSION,
    build: { kind: 'install', pkg: `helm.sh/helm/v3/cmd/helm@${HELM_VERSION}` },
  },
  {
    // The real cosign: interop checks that it verifies what berth signs, and berth what it signs.
    name: 'cosign',
    version: COSIGN_VERSION,
    build: { kind: 'install', pkg: `github.com/sigstore/cosign/v2/cmd/cosign@${COSIGN_VERSION}` },
  },
  {
    // The real sops: files encrypted by it are what berth's SOPS support must read (shared/sops.ts).
    name: 'sops',
    version: SOPS_VERSION,
    build: { kind: 'install', pkg: `github.com/getsops/sops/v3/cmd/sops@${SOPS_VERSION}` },
  },
  {
    // Simulated nodes: keeps fake Nodes Ready and drives the Pods scheduled on them to Running.
    name: 'kwok',
    version: KWOK_VERSION,
    build: { kind: 'install', pkg: `sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}` },
  },
  {
    // Lints .github/workflows in the test command.
    name: 'actionlint',
    version: ACTIONLINT_VERSION,
    build: { kind: 'install', pkg: `github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT_VERSION}` },
  },
  {
    name: 'etcd',
    version: ETCD_VERSION,
    build: {
      kind: 'module',
      moduleDir: join(GROUND_DIR, 'go', 'etcdbin'),
      pkg: 'go.etcd.io/etcd/server/v3',
      ldflags: '-s -w',
    },
  },
  // kubelet and kube-proxy make the real node (node.ts): a kubelet running containers through containerd, and the
  // Service rules that let its pods reach the apiserver at the kubernetes Service's address.
  {
    // The real node's pause image (node.ts): registry.k8s.io is out of reach, so the ground builds its own.
    name: 'pause',
    version: 'v1',
    build: { kind: 'module', moduleDir: join(GROUND_DIR, 'go', 'pause'), pkg: '.', ldflags: '-s -w' },
  },
  ...(['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubelet', 'kube-proxy'] as const).map((name) => ({
    name,
    version: KUBERNETES_VERSION,
    build: {
      kind: 'module' as const,
      moduleDir: join(GROUND_DIR, 'go', 'k8sbin'),
      pkg: `k8s.io/kubernetes/cmd/${name}`,
      // They report their version from these; without them they say v0.0.0 and clients warn about skew.
      ldflags: K8S_LDFLAGS,
    },
  })),
]

/** Path of a part's binary in the cache (it may not exist yet). */
export function binaryPath(part: Pick<GoPart, 'name' | 'version'>): string {
  return join(cacheDir(), part.name, part.version, part.name)
}

export function partNamed(name: GoPart['name']): GoPart {
  const part = GO_PARTS.find((p) => p.name === name)
  if (!part) throw new Error(`unknown test-ground part ${name}`)
  return part
}
