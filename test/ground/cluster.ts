/**
 * What makes the ground a cluster that runs things: kube-controller-manager (Deployments,
 * ReplicaSets, garbage collection, namespace deletion, ServiceAccounts), kube-scheduler, and kwok,
 * which keeps a few simulated Nodes Ready (renewing their Leases) and drives the Pods scheduled on
 * them through their lifecycle without containers.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { execa } from 'execa'
import type { PartLocations } from './build.ts'
import { type Started, startProcess, waitUntil } from './processes.ts'

/** Simulated Nodes: each can hold 4 CPUs, 8 GiB and 110 pods, so "more than any node has" is easy to ask for. */
export const NODES = ['kwok-node-0', 'kwok-node-1', 'kwok-node-2']
export const NODE_CPU = '4'
const KWOK_ANNOTATION = 'kwok.x-k8s.io/node'

export type ClusterFiles = {
  dir: string
  kubeconfig: string
  serviceAccountKey: string
  caCert: string
  /** Beside a real node, keep pods off the simulated Nodes unless they tolerate `kwok.x-k8s.io/node=fake`. */
  taintKwok?: boolean
}

/** Start the controllers, the scheduler and kwok; create the Nodes and wait until they are Ready. */
export async function startCluster(
  parts: PartLocations,
  files: ClusterFiles,
  track: (started: Started) => Promise<void>,
): Promise<void> {
  const { dir, kubeconfig } = files
  const controllers = startProcess(
    'kube-controller-manager',
    parts.kubeControllerManager,
    [
      `--kubeconfig=${kubeconfig}`,
      '--leader-elect=false',
      `--service-account-private-key-file=${files.serviceAccountKey}`,
      `--root-ca-file=${files.caCert}`,
      '--use-service-account-credentials=false',
      '--controllers=*',
      '--bind-address=127.0.0.1',
      '--secure-port=0',
      // kwok renews node Leases; this only covers a slow renewal on a busy 2-core machine.
      '--node-monitor-grace-period=60s',
      // Its default 20 requests/s, not the 2 cores, would pace thousands of namespaces or Deployments (benchmarks).
      '--kube-api-qps=100',
      '--kube-api-burst=200',
    ],
    join(dir, 'kube-controller-manager.log'),
  )
  await track(controllers)
  const scheduler = startProcess(
    'kube-scheduler',
    parts.kubeScheduler,
    [`--kubeconfig=${kubeconfig}`, '--leader-elect=false', '--bind-address=127.0.0.1', '--secure-port=0'],
    join(dir, 'kube-scheduler.log'),
  )
  await track(scheduler)
  const kwok = startProcess(
    'kwok',
    parts.kwok,
    [
      `--kubeconfig=${kubeconfig}`,
      '--manage-all-nodes=false',
      `--manage-nodes-with-annotation-selector=${KWOK_ANNOTATION}=fake`,
      // Without node Leases the node controller marks the Nodes NotReady after ~50 s.
      '--node-lease-duration-seconds=40',
      '--server-address=',
    ],
    join(dir, 'kwok.log'),
  )
  await track(kwok)

  const nodes = join(dir, 'nodes.yaml')
  await writeFile(nodes, NODES.map((name) => nodeYaml(name, files.taintKwok ?? false)).join('---\n'))
  const kubectl = (args: string[]): Promise<unknown> =>
    execa(parts.kubectl, ['--kubeconfig', kubeconfig, ...args], { timeout: 60_000 })
  await kubectl(['apply', '-f', nodes])
  await waitUntil(
    kwok,
    async () => {
      const out = await execa(
        parts.kubectl,
        ['--kubeconfig', kubeconfig, 'get', 'nodes', '-o', 'jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}'],
        { reject: false },
      )
      return out.stdout.split(' ').filter((s) => s === 'True').length === NODES.length
    },
    60_000,
  )
  // The controller-manager creates each namespace's default ServiceAccount; pods need the one in default.
  await waitUntil(
    controllers,
    async () => (await execa(parts.kubectl, ['--kubeconfig', kubeconfig, 'get', 'serviceaccount', 'default'], { reject: false })).exitCode === 0,
    60_000,
  )
}

function nodeYaml(name: string, taint: boolean): string {
  const taints = taint ? `spec:\n  taints: [{key: ${KWOK_ANNOTATION}, value: fake, effect: NoSchedule}]\n` : ''
  return `${taints}apiVersion: v1
kind: Node
metadata:
  name: ${name}
  annotations:
    ${KWOK_ANNOTATION}: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: ${name}
    kubernetes.io/os: linux
    kubernetes.io/role: agent
    type: kwok
status:
  allocatable: {cpu: "${NODE_CPU}", memory: 8Gi, pods: "110"}
  capacity: {cpu: "${NODE_CPU}", memory: 8Gi, pods: "110"}
`
}
