/**
 * Starts and stops a whole test ground on 127.0.0.1: etcd, kube-apiserver (started the way
 * envtest starts it), kube-controller-manager, kube-scheduler and kwok with three simulated
 * Nodes (cluster.ts), a plain-HTTP registry and a TLS registry with htpasswd basic auth.
 */
import { randomBytes } from 'node:crypto'
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { type RequestOptions, request as httpsRequest } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { execa } from 'execa'
import { load } from 'js-yaml'
import { writeYaml } from '../../shared/yaml-writer.ts'
import { ensureParts, type PartLocations, type Say } from './build.ts'
import { createBridge, KUBERNETES_SERVICE_IP, NODE_NAME, SERVICE_CIDR, startNode, type Bridge } from './node.ts'
import { cacheDir } from './parts.ts'
import { startPrometheus, startPushgateway } from './prometheus.ts'
import { startCluster } from './cluster.ts'
import { issueCert, type KeyPair, makeCa, makeServiceAccountKeys } from './certs.ts'
import {
  freePort,
  GUARDED_PIDS,
  isAlive,
  NODE_CLEANUP,
  type Started,
  startGuardian,
  startProcess,
  stopProcess,
  waitUntil,
} from './processes.ts'

export type RegistryInfo = {
  /** `host:port`, as it goes into an OCI reference. */
  host: string
  tls: boolean
  /** Present on the authenticated registry. */
  username?: string
  password?: string
}

/** Everything a test or a person needs to use a running ground. Serialized as `ground.json`. */
export type GroundInfo = {
  dir: string
  kubeconfig: string
  apiserverUrl: string
  ca: KeyPair
  registries: { plain: RegistryInfo; secure: RegistryInfo }
  /** `host:port` of Prometheus and of the Pushgateway it scrapes (prometheus.ts). */
  metrics: { prometheus: string; pushgateway: string }
  parts: PartLocations
  processes: Started[]
  guardianPid?: number
  /** Present when the ground has a real node (StartOptions.node). */
  node?: { name: string; bridge: Bridge }
}

export type StartOptions = {
  say: Say
  /** Keep running after this process exits (`testground up`); otherwise a guardian reaps it. */
  persistent?: boolean
  /**
   * Add a real node (node.ts) that runs containers. The apiserver and the registries then listen on the node's
   * bridge instead of 127.0.0.1, so pods reach them, and kwok's simulated Nodes are tainted: only pods that tolerate
   * `kwok.x-k8s.io/node=fake:NoSchedule` go there, everything else runs for real.
   */
  node?: boolean
}

const ADMIN_USER = 'berth-admin'

/** Build what is missing, start every server, wait until all are ready. */
export async function startGround(options: StartOptions): Promise<GroundInfo> {
  const parts = await ensureParts(options.say)
  const dir = await mkdtemp(join(tmpdir(), 'berth-ground-'))
  const processes: Started[] = []
  // Armed before any server starts: from here on, if this process dies, the ground goes too.
  const guardianPid = options.persistent ? undefined : startGuardian(process.pid, dir)
  const track = async (started: Started): Promise<void> => {
    processes.push(started)
    await appendFile(join(dir, GUARDED_PIDS), `${started.pid}\n`)
  }
  try {
    const pki = join(dir, 'pki')
    await mkdir(pki)
    const bridge = options.node ? await createBridge(dir, parts.kubeProxy) : undefined
    // Where the apiserver and the registries listen: loopback, or the bridge pods reach the host on.
    const address = bridge?.address ?? '127.0.0.1'
    const ips = bridge ? [bridge.address] : []
    const ca = await makeCa(pki)
    // In-cluster clients reach the apiserver at the kubernetes Service's address, the range's first.
    const service = { ips: [...ips, KUBERNETES_SERVICE_IP], dns: ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc'] }
    const [apiserverTls, registryTls, admin, sa] = await Promise.all([
      issueCert(ca, pki, { name: 'apiserver', commonName: 'kube-apiserver', usage: 'server', ...service }),
      issueCert(ca, pki, { name: 'registry', commonName: 'registry', usage: 'server', ips }),
      issueCert(ca, pki, { name: 'admin', commonName: ADMIN_USER, groups: ['system:masters'], usage: 'client' }),
      makeServiceAccountKeys(pki),
    ])
    const { etcdPort, etcdPeerPort, apiPort, plainPort, securePort, pushPort, promPort } = await distinctFreePorts([
      'etcdPort',
      'etcdPeerPort',
      'apiPort',
      'plainPort',
      'securePort',
      'pushPort',
      'promPort',
    ])

    const etcd = startProcess(
      'etcd',
      parts.etcd,
      [
        '--name=ground',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
        `--initial-cluster=ground=http://127.0.0.1:${etcdPeerPort}`,
        '--unsafe-no-fsync=true',
        '--log-level=warn',
      ],
      join(dir, 'etcd.log'),
    )
    await track(etcd)

    const plain = await startRegistry(parts.registry, dir, 'registry-plain', `${address}:${plainPort}`)
    await track(plain.started)
    const password = randomBytes(18).toString('base64url')
    const secure = await startRegistry(parts.registry, dir, 'registry-secure', `${address}:${securePort}`, {
      tls: registryTls,
      username: 'berth',
      password,
    })
    await track(secure.started)

    await waitUntil(etcd, async () => (await statusOf(`http://127.0.0.1:${etcdPort}/health`)) === 200, 30_000)
    const apiserver = startProcess(
      'kube-apiserver',
      parts.kubeApiserver,
      [
        `--etcd-servers=http://127.0.0.1:${etcdPort}`,
        `--cert-dir=${pki}`,
        `--tls-cert-file=${apiserverTls.cert}`,
        `--tls-private-key-file=${apiserverTls.key}`,
        `--client-ca-file=${ca.cert}`,
        `--secure-port=${apiPort}`,
        `--bind-address=${address}`,
        `--advertise-address=${address}`,
        `--service-cluster-ip-range=${SERVICE_CIDR}`,
        // Logs and exec reach the kubelet at its address, not at a host name nothing resolves.
        '--kubelet-preferred-address-types=InternalIP',
        '--allow-privileged=true',
        // Pods on a real node need this plugin: it mounts their ServiceAccount token. Without one, it would only
        // refuse pods created before the controller-manager made their namespace's default ServiceAccount.
        ...(bridge ? [] : ['--disable-admission-plugins=ServiceAccount']),
        '--authorization-mode=RBAC',
        `--service-account-issuer=https://127.0.0.1:${apiPort}/`,
        `--service-account-key-file=${sa.pub}`,
        `--service-account-signing-key-file=${sa.key}`,
      ],
      join(dir, 'kube-apiserver.log'),
    )
    await track(apiserver)

    const apiserverUrl = `https://${address}:${apiPort}`
    const metrics = { prometheus: `${address}:${promPort}`, pushgateway: `${address}:${pushPort}` }
    await Promise.all([
      (async () => {
        await track(await startPushgateway(parts.pushgateway, dir, metrics.pushgateway))
        await track(await startPrometheus(parts.prometheus, dir, 'prometheus', metrics.prometheus, metrics.pushgateway))
      })(),
      waitUntil(plain.started, async () => (await statusOf(`http://${plain.host}/v2/`)) === 200, 20_000),
      waitUntil(
        secure.started,
        async () => (await statusOf(`https://${secure.host}/v2/`, { ca: ca.cert })) === 401,
        20_000,
      ),
      waitUntil(
        apiserver,
        async () => (await statusOf(`${apiserverUrl}/readyz`, { ca: ca.cert, client: admin })) === 200,
        120_000,
      ),
    ])

    const kubeconfig = join(dir, 'kubeconfig')
    await writeKubeconfig(kubeconfig, {
      server: apiserverUrl,
      ca: ca.cert,
      client: admin,
      user: ADMIN_USER,
      context: 'berth-testground',
    })
    const clusterFiles = { dir, kubeconfig, serviceAccountKey: sa.key, caCert: ca.cert, taintKwok: !!bridge }
    await startCluster(parts, clusterFiles, track)
    if (bridge) await startNode(parts, { dir, kubeconfig, caCert: ca.cert, bridge, plainRegistry: plain.host }, track)
    const info: GroundInfo = {
      dir,
      kubeconfig,
      apiserverUrl,
      ca,
      registries: {
        plain: { host: plain.host, tls: false },
        secure: { host: secure.host, tls: true, username: 'berth', password },
      },
      metrics,
      parts,
      processes,
      ...(guardianPid === undefined ? {} : { guardianPid }),
      ...(bridge ? { node: { name: NODE_NAME, bridge } } : {}),
    }
    await writeFile(join(dir, 'ground.json'), `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 })
    return info
  } catch (error: unknown) {
    await stopAll(dir, processes, guardianPid)
    await rm(dir, { recursive: true, force: true })
    throw error
  }
}

/** Stop every server of the ground and remove its folder. Safe to call twice. */
export async function stopGround(info: Pick<GroundInfo, 'dir' | 'processes' | 'guardianPid'>): Promise<void> {
  await stopAll(info.dir, info.processes, info.guardianPid)
  await rm(info.dir, { recursive: true, force: true })
}

async function stopAll(dir: string, processes: readonly Started[], guardianPid: number | undefined): Promise<void> {
  // The guardian first, so it does not race us; the node's containers while containerd still runs; then the
  // apiserver before etcd, newest first; then what the node left (its script is idempotent).
  if (guardianPid !== undefined) await stopProcess(guardianPid, 0)
  await cleanUpNode(dir)
  for (const p of [...processes].reverse()) if (isAlive(p.pid)) await stopProcess(p.pid)
  await cleanUpNode(dir)
}

async function cleanUpNode(dir: string): Promise<void> {
  const script = join(dir, NODE_CLEANUP)
  await execa(script, [], { reject: false, stdin: 'ignore', timeout: 60_000 }).catch(() => undefined)
}

export async function readGroundInfo(file: string): Promise<GroundInfo> {
  return JSON.parse(await readFile(file, 'utf8')) as GroundInfo
}

/** The file that names the ground.json of the ground `npm run testground -- up` started. */
export const groundPointer = (): string => join(cacheDir(), 'run', 'ground-path')

/** The ground `npm run testground -- up` started, if it still runs. */
export async function runningGround(): Promise<GroundInfo | undefined> {
  try {
    const info = await readGroundInfo((await readFile(groundPointer(), 'utf8')).trim())
    return info.processes.some((p) => isAlive(p.pid)) ? info : undefined
  } catch {
    return undefined
  }
}

type RegistryAuth = { tls: KeyPair; username: string; password: string }

/** Start a registry listening on `host` (`address:port`). */
export async function startRegistry(
  binary: string,
  dir: string,
  name: string,
  host: string,
  auth?: RegistryAuth,
): Promise<{ started: Started; host: string }> {
  const root = join(dir, name)
  await mkdir(root)
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: join(root, 'data') }, delete: { enabled: true } },
    http: {
      addr: host,
      secret: randomBytes(16).toString('hex'),
      ...(auth ? { tls: { certificate: auth.tls.cert, key: auth.tls.key } } : {}),
    },
  }
  if (auth) {
    const htpasswd = join(root, 'htpasswd')
    // The registry reads bcrypt entries only.
    await writeFile(htpasswd, `${auth.username}:${bcrypt.hashSync(auth.password, 10)}\n`, { mode: 0o600 })
    config.auth = { htpasswd: { realm: 'berth-testground', path: htpasswd } }
  }
  const configFile = join(root, 'config.yml')
  await writeFile(configFile, writeYaml(config))
  return { started: startProcess(name, binary, ['serve', configFile], join(dir, `${name}.log`)), host }
}

async function distinctFreePorts<K extends string>(names: readonly K[]): Promise<Record<K, number>> {
  const ports = new Set<number>()
  while (ports.size < names.length) ports.add(await freePort())
  const list = [...ports]
  return Object.fromEntries(names.map((name, i) => [name, list[i]])) as Record<K, number>
}

/**
 * Write a kubeconfig that authenticates with a client certificate or a bearer token; kubectl and client-node both read
 * it.
 */
export async function writeKubeconfig(
  file: string,
  c: { server: string; ca: string; user: string; context: string; mode?: number } & (
    { client: KeyPair } | { token: string }
  ),
): Promise<void> {
  const b64 = async (path: string): Promise<string> => (await readFile(path)).toString('base64')
  const config = {
    'apiVersion': 'v1',
    'kind': 'Config',
    'clusters': [
      { name: 'berth-testground', cluster: { 'server': c.server, 'certificate-authority-data': await b64(c.ca) } },
    ],
    'users': [
      {
        name: c.user,
        user:
          'token' in c
            ? { token: c.token }
            : { 'client-certificate-data': await b64(c.client.cert), 'client-key-data': await b64(c.client.key) },
      },
    ],
    'contexts': [{ name: c.context, context: { cluster: 'berth-testground', user: c.user } }],
    'current-context': c.context,
  }
  await writeFile(file, writeYaml(config), { mode: c.mode ?? 0o600 })
}

/**
 * One kubeconfig whose contexts, named by the keys of `grounds`, reach each ground's apiserver as its admin (the
 * first is current): `--context` then picks the cluster.
 */
export async function writeContexts(file: string, grounds: Record<string, string>): Promise<void> {
  type Named = { name: string } & Record<string, unknown>
  const lists = { clusters: [] as Named[], users: [] as Named[], contexts: [] as Named[] }
  for (const [name, kubeconfig] of Object.entries(grounds)) {
    const doc = load(await readFile(kubeconfig, 'utf8')) as { clusters: Named[]; users: Named[] }
    lists.clusters.push({ ...doc.clusters[0], name })
    lists.users.push({ ...doc.users[0], name })
    lists.contexts.push({ name, context: { cluster: name, user: name } })
  }
  const config = { 'apiVersion': 'v1', 'kind': 'Config', ...lists, 'current-context': Object.keys(grounds)[0] ?? '' }
  await writeFile(file, writeYaml(config), { mode: 0o600 })
}

/** HTTP status of a GET to `url` (https with the ground's CA and, optionally, a client certificate). */
async function statusOf(url: string, tls?: { ca: string; client?: KeyPair }): Promise<number> {
  const options: RequestOptions = { timeout: 2000 }
  if (tls) {
    options.ca = await readFile(tls.ca)
    if (tls.client)
      Object.assign(options, { cert: await readFile(tls.client.cert), key: await readFile(tls.client.key) })
  }
  const get = url.startsWith('https:') ? httpsRequest : httpRequest
  return await new Promise((resolve, reject) => {
    const req = get(url, options, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', reject)
    req.on('timeout', () => {
      req.destroy(new Error('timeout'))
    })
    req.end()
  })
}
