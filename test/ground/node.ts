/**
 * A real node for the ground: a kubelet that runs containers through Debian's containerd, runc and CNI plugins, and
 * kube-proxy, so that pods reach the apiserver at the `kubernetes` Service's address as they do in any cluster.
 * The recipe and its traps are in the team's TESTGROUND.md ("A real node").
 *
 * Networking stays on this machine: a bridge the ground creates (a /24 of 10.88.0.0/16 no interface uses), with the
 * apiserver, the registries and the kubelet bound to the bridge's own address (never 0.0.0.0). Pods get addresses on
 * the bridge from the CNI bridge plugin and reach the host there; kube-proxy turns the Service address into the
 * apiserver's.
 *
 * Everything the node leaves behind (containers, mounts, the bridge, kube-proxy's rules) is removed by one script,
 * `node-cleanup.sh` in the run folder, which stopping the ground runs and which the guardian runs when the ground's
 * owner died without stopping it.
 */
import { randomBytes } from 'node:crypto'
import { access, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { execa } from 'execa'
import { EnvironmentError } from '../../shared/errors.ts'
import { buildah } from './buildah.ts'
import { freePort, NODE_CLEANUP, type Started, startProcess, waitUntil } from './processes.ts'

export const NODE_NAME = 'berth-node-0'
const CNI_BIN = '/usr/lib/cni'
// Room for the large benchmark's Services (a /24 holds 254).
export const SERVICE_CIDR = '10.0.0.0/16'
export const KUBERNETES_SERVICE_IP = '10.0.0.1'

export type Bridge = { name: string; address: string; subnet: string }

/** Commands the node needs from the machine, and the Debian package of each. */
export const NODE_TOOLS: ReadonlyArray<{ command: string; pkg: string }> = [
  { command: 'containerd', pkg: 'containerd' },
  { command: 'runc', pkg: 'runc' },
  { command: `${CNI_BIN}/bridge`, pkg: 'containernetworking-plugins' },
  { command: 'iptables', pkg: 'iptables' },
  { command: 'conntrack', pkg: 'conntrack' },
  { command: 'ip', pkg: 'iproute2' },
]

/**
 * Create the bridge pods will live on, on a /24 no interface of this machine uses. Created before the apiserver
 * starts: the apiserver binds to its address.
 */
export async function createBridge(dir: string, kubeProxy: string): Promise<Bridge> {
  // The script that undoes all of the node goes first: from here on there is something to undo.
  await writeFile(join(dir, NODE_CLEANUP), cleanupScript(dir, kubeProxy), { mode: 0o700 })
  const used = (await execa('ip', ['-4', '-o', 'addr', 'show'])).stdout
  const free = [...Array(256).keys()].map((i) => (i * 37 + 11) % 256).find((i) => !used.includes(` 10.88.${i}.`))
  if (free === undefined) throw new EnvironmentError('StartFailed', 'no free /24 in 10.88.0.0/16 for the node\'s bridge')
  const bridge = { name: `bn${randomBytes(4).toString('hex')}`, address: `10.88.${free}.1`, subnet: `10.88.${free}.0/24` }
  await writeFile(join(dir, 'bridge'), `${bridge.name}\n`)
  await execa('ip', ['link', 'add', bridge.name, 'type', 'bridge'])
  await execa('ip', ['addr', 'add', `${bridge.address}/24`, 'dev', bridge.name])
  await execa('ip', ['link', 'set', bridge.name, 'up'])
  return bridge
}

export type NodeFiles = {
  dir: string
  kubeconfig: string
  caCert: string
  bridge: Bridge
  /** `host:port` of the plain-HTTP registry, which containerd pulls from over HTTP. */
  plainRegistry: string
}

/** Start containerd, the kubelet and kube-proxy; wait until the Node is Ready. */
export async function startNode(
  parts: { kubelet: string; kubeProxy: string; pause: string; kubectl: string },
  files: NodeFiles,
  track: (started: Started) => Promise<void>,
): Promise<void> {
  const dir = join(files.dir, 'node')
  await mkdir(dir, { recursive: true })
  const pause = `${files.plainRegistry}/berth/pause:v1`
  await pushPause(parts.pause, pause, dir)

  const socket = join(dir, 'containerd.sock')
  await writeFile(join(dir, 'containerd.toml'), containerdConfig(dir, socket, pause, files.plainRegistry))
  await mkdir(join(dir, 'cni'), { recursive: true })
  await writeFile(join(dir, 'cni', '10-berth.conflist'), JSON.stringify(cniConfig(dir, files.bridge), null, 2))
  await writeFile(join(dir, 'kubelet.yaml'), kubeletConfig(dir, socket, files, await freePort()))
  // containerd gets a mount namespace of its own (sh execs it: same pid) and the kubelet joins it: the mounts they
  // make (volumes, container roots, and the pods' network namespaces, pinned under a /run/netns of its own) vanish
  // with it, whatever way the ground ends.
  const containerd = startProcess(
    'containerd',
    'unshare',
    [
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      'mkdir -p /run/netns && mount -t tmpfs -o mode=0755 tmpfs /run/netns && exec containerd --config "$1"',
      'containerd',
      join(dir, 'containerd.toml'),
    ],
    join(files.dir, 'containerd.log'),
  )
  await track(containerd)
  await waitUntil(containerd, () => access(socket).then(() => true), 30_000)
  const kubelet = startProcess(
    'kubelet',
    'nsenter',
    [
      `--mount=/proc/${containerd.pid}/ns/mnt`,
      '--',
      parts.kubelet,
      `--config=${join(dir, 'kubelet.yaml')}`,
      `--kubeconfig=${files.kubeconfig}`,
      `--hostname-override=${NODE_NAME}`,
      `--node-ip=${files.bridge.address}`,
      `--root-dir=${join(dir, 'kubelet')}`,
      '--v=1',
    ],
    join(files.dir, 'kubelet.log'),
  )
  await track(kubelet)
  await writeFile(join(dir, 'kubelet.pid'), `${kubelet.pid}\n`)
  const [healthz, metrics] = [await freePort(), await freePort()]
  const proxy = startProcess(
    'kube-proxy',
    parts.kubeProxy,
    [
      `--kubeconfig=${files.kubeconfig}`,
      `--hostname-override=${NODE_NAME}`,
      '--proxy-mode=iptables',
      `--cluster-cidr=${files.bridge.subnet}`,
      `--healthz-bind-address=127.0.0.1:${healthz}`,
      `--metrics-bind-address=127.0.0.1:${metrics}`,
      // NodePorts only on the bridge, and no sysctls it would otherwise set for localhost NodePorts and conntrack.
      `--nodeport-addresses=${files.bridge.address}/32`,
      '--iptables-localhost-nodeports=false',
      '--conntrack-max-per-core=0',
      '--conntrack-tcp-timeout-established=0',
      '--conntrack-tcp-timeout-close-wait=0',
    ],
    join(files.dir, 'kube-proxy.log'),
  )
  await track(proxy)
  await writeFile(join(dir, 'kube-proxy.pid'), `${proxy.pid}\n`)
  await waitUntil(
    kubelet,
    async () => {
      const out = await execa(
        parts.kubectl,
        [
          '--kubeconfig',
          files.kubeconfig,
          'get',
          'node',
          NODE_NAME,
          '-o',
          'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
        ],
        { reject: false },
      )
      return out.stdout === 'True'
    },
    120_000,
  )
}

/** The pause image, built here from the ground's pause binary and pushed where containerd pulls it from. */
async function pushPause(binary: string, reference: string, dir: string): Promise<void> {
  const log = join(dir, 'pause-image.log')
  const container = await buildah(['from', '--pull=never', 'scratch'])
  try {
    await buildah(['copy', '--chmod', '0755', container, binary, '/pause'], { log })
    await buildah(['config', '--entrypoint', '["/pause"]', container], { log })
    await buildah(['commit', '--timestamp', '0', '--rm', container, 'localhost/berth-pause:v1'], { log })
  } catch (error: unknown) {
    await buildah(['rm', container]).catch(() => undefined)
    throw error
  }
  await buildah(['push', '--tls-verify=false', 'localhost/berth-pause:v1', `docker://${reference}`], { log })
}

function containerdConfig(dir: string, socket: string, pause: string, registry: string): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"'
  return `version = 2
root = "${join(dir, 'containerd', 'root')}"
state = "${join(dir, 'containerd', 'state')}"

[grpc]
  address = "${socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "${join(dir, 'containerd', 'opt')}"

[${cri}]
  sandbox_image = "${pause}"
  # Root here may not lower a process's oom_score_adj, which every sandbox asks for (-998): runc then fails with
  # "can't get final child's PID from pipe". Restricting keeps the requested score at or above the current one.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false

[${cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[${cri}.cni]
  bin_dir = "${CNI_BIN}"
  conf_dir = "${join(dir, 'cni')}"

# The ground's registry speaks plain HTTP.
[${cri}.registry.mirrors."${registry}"]
  endpoint = ["http://${registry}"]
`
}

function cniConfig(dir: string, bridge: Bridge): object {
  return {
    cniVersion: '1.0.0',
    name: 'berth-ground',
    plugins: [
      {
        type: 'bridge',
        bridge: bridge.name,
        isGateway: true,
        // Pods talk to the host (apiserver, registries) and to each other; nothing leaves the machine.
        ipMasq: false,
        ipam: {
          type: 'host-local',
          dataDir: join(dir, 'cni-ipam'),
          ranges: [[{ subnet: bridge.subnet, gateway: bridge.address, rangeStart: bridge.address.replace(/\.1$/, '.10') }]],
          routes: [{ dst: '0.0.0.0/0' }],
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  }
}

function kubeletConfig(dir: string, socket: string, files: NodeFiles, port: number): string {
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The machine's cgroups are v1 (hybrid); Kubernetes >= 1.35 refuses them unless told not to.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
containerRuntimeEndpoint: unix://${socket}
address: ${files.bridge.address}
port: ${port}
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
  x509: {clientCAFile: ${files.caCert}}
authorization: {mode: AlwaysAllow}
podLogsDir: ${join(dir, 'pod-logs')}
volumePluginDir: ${join(dir, 'volume-plugins')}
resolvConf: /etc/resolv.conf
serializeImagePulls: false
# A busy shared machine's disk must not make the node evict the pods under test.
evictionHard: {memory.available: "0%", nodefs.available: "0%", imagefs.available: "0%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
`
}

/**
 * Undo the node, idempotently, before the ground's processes are stopped: stop the kubelet and kube-proxy (so neither
 * puts back what follows), kill the containers while containerd still runs (their shims escape any process group),
 * remove kube-proxy's rules and the bridge. containerd's mount namespace goes with containerd.
 */
function cleanupScript(runDir: string, kubeProxy: string): string {
  const socket = join(runDir, 'node', 'containerd.sock')
  return `#!/bin/sh
dir='${runDir}'
sock='${socket}'
for f in kubelet kube-proxy; do
  if [ -f "$dir/node/$f.pid" ]; then kill -KILL "-$(cat "$dir/node/$f.pid")" 2>/dev/null; fi
done
if [ -S "$sock" ]; then
  for t in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr --address "$sock" -n k8s.io tasks kill -a -s SIGKILL "$t" >/dev/null 2>&1
  done
fi
for p in $(grep -l -a -F -- "$sock" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do kill -KILL "$p" 2>/dev/null; done
'${kubeProxy}' --cleanup --proxy-mode=iptables >/dev/null 2>&1
# The kubelet's own chains (kube-proxy --cleanup leaves them).
for ipt in iptables ip6tables; do
  for table in filter nat; do
    for hook in INPUT OUTPUT; do $ipt -t $table -D $hook -j KUBE-FIREWALL 2>/dev/null; done
    for chain in KUBE-FIREWALL KUBE-KUBELET-CANARY; do
      $ipt -t $table -F $chain 2>/dev/null && $ipt -t $table -X $chain 2>/dev/null
    done
  done
done
if [ -f "$dir/bridge" ]; then ip link del "$(cat "$dir/bridge")" 2>/dev/null; fi
for m in $(awk -v d="$dir" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do umount -l "$m" 2>/dev/null; done
exit 0
`
}

/** Kinds of a problem the machine has that makes a real node impossible, or undefined when it can run one. */
export async function nodeUnsupported(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'a real node needs root (containerd, runc, network and mount namespaces)'
  const sh = await execa('unshare', ['--mount', '--net', 'true'], { reject: false })
  if (sh.exitCode !== 0) return `cannot make namespaces here: ${sh.stderr}`
  return undefined
}
