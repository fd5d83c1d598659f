/**
 * berth's own image on a real node: the repository's Dockerfile built by buildah (reproducibly), pushed to the
 * ground's registry, and run by `berth install --image … --apply` as pods of a real kubelet (containerd, runc, CNI,
 * kube-proxy) — in-cluster auth through the projected ServiceAccount token, probes, the metrics Service, leader
 * hand-over when the leader's pod is deleted, and a reconciler killed in the middle of an apply.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Environment } from '../api/environment.ts'
import { OWNER_LABELS } from '../api/well-known.ts'
import { buildah, imageStore } from './ground/buildah.ts'
import { buildImage, type BuiltImage, pushImage, REPO_ROOT } from './ground/image.ts'
import { NODE_NAME } from './ground/node.ts'
import { ORAS_VERSION } from './ground/parts.ts'
import { runCompositeAction } from './support/action.ts'
import { configMap } from './support/config-repo.ts'
import { environment, publishApp } from './support/environments.ts'
import { eventually } from './support/eventually.ts'
import { useGround } from './support/ground.ts'

const g = useGround(import.meta.url, { node: true })
process.env.SOURCE_DATE_EPOCH = '1700000000'

const SYSTEM = 'berth-system'
const VERSION = (JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version
const say = (line: string): void => {
  process.stderr.write(`image: ${line}\n`)
}

type Pod = {
  metadata: { name: string; uid: string; deletionTimestamp?: string }
  spec: { nodeName?: string; securityContext?: Record<string, unknown> }
  status: {
    phase?: string
    podIP?: string
    conditions?: Array<{ type: string; status: string }>
    containerStatuses?: Array<{ containerID?: string; restartCount: number; ready: boolean }>
  }
}
type Lease = { spec: { holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string } }

const kubectl = async (args: readonly string[]): Promise<string> => await g.kubectl(args)
const pods = async (): Promise<Pod[]> =>
  (JSON.parse(await kubectl(['get', 'pods', '-n', SYSTEM, '-l', 'app.kubernetes.io/name=berth', '-o', 'json'])) as {
    items: Pod[]
  }).items.filter((p) => !p.metadata.deletionTimestamp)
const ready = (p: Pod): boolean => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false
const lease = (): Promise<Lease | undefined> =>
  g.kube().get<Lease>({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'berth-reconciler', namespace: SYSTEM },
  })
/** The pod holding the Lease (its identity is `<pod name>-<pid>`). */
const leader = async (): Promise<Pod | undefined> => {
  const holder = (await lease())?.spec.holderIdentity ?? ''
  return (await pods()).find((p) => holder.startsWith(`${p.metadata.name}-`))
}
/** A pod's reconciler log; `previous`: of the container before its last restart. */
const logsOf = async (pod: string, previous = false): Promise<string> =>
  (await execa(
    g.ground.parts.kubectl,
    ['--kubeconfig', g.ground.kubeconfig, 'logs', '-n', SYSTEM, pod, ...(previous ? ['--previous'] : [])],
    { reject: false },
  )).stdout
const env = (name: string): Promise<Environment | undefined> =>
  g.kube().get<Environment>({ ...environment(g.namespace, name, {}), spec: undefined } as never)
const readyOf = (e: Environment | undefined): string | undefined =>
  e?.status?.conditions?.find((c) => c.type === 'Ready')?.status

describe('berth\'s image, built from the Dockerfile', () => {
  let built: BuiltImage | undefined
  let digest = ''

  it('is the same image, to the digest, however often it is built: lean, non-root, with oras', async () => {
    built = await buildImage({ say })
    const registry = g.ground.registries.plain.host
    digest = await pushImage(built.local, `${registry}/berth:${VERSION}`, true)
    // Everything again — the Debian root, both bases, every step — and the same bytes come out.
    const again = await buildImage({ say, noCache: true, tag: 'localhost/berth:rebuilt' })
    expect(again.id).toBe(built.id)
    expect(await pushImage(again.local, `${registry}/berth:rebuilt`, true)).toBe(digest)
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/)

    const config = (JSON.parse(await buildah(['inspect', '--type', 'image', built.local])) as {
      OCIv1: { config: { User: string; Entrypoint: string[] } }
    }).OCIv1.config
    expect(config.User).toBe('65532:65532')
    const container = await buildah(['from', '--pull=never', built.local])
    try {
      const run = (command: readonly string[], user = config.User): Promise<string> =>
        buildah(['run', '--runtime', 'runc', '--network', 'none', '--user', user, container, '--', ...command])
      // Runtime dependencies only: no dev dependency, none of berth's tests, no npm cache, no type declarations.
      expect((await run(['ls', '/app'])).split('\n')).toEqual(
        ['api', 'bin', 'cli', 'install', 'node_modules', 'package.json', 'packager', 'reconciler', 'shared'],
      )
      const ours = await run(['sh', '-c', 'find /app -path /app/node_modules -prune -o -name "*.test.ts" -print'])
      expect(ours).toBe('')
      expect(await run(['sh', '-c', 'find /app/node_modules -name "*.d.ts" | head -1'])).toBe('')
      // Before anything runs in this container: nothing left in /root or /tmp by the build.
      expect(await run(['sh', '-c', 'ls -A /root; ls -d /root/.npm /tmp/* 2>/dev/null || true'], '0:0')).toBe(
        '.bashrc\n.profile',
      )
      expect(await run([...config.Entrypoint, '--version'])).toBe(VERSION)
      // The oras the tests use, and the Node the project pins (its major is the Dockerfile's NODE_VERSION).
      expect(await run(['oras', 'version'])).toMatch(new RegExp(`^Version:\\s+${ORAS_VERSION.slice(1)}\\n`))
      const pinned = (JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as {
        devDependencies: { node: string }
      }).devDependencies.node.replace(/^\^/, '')
      expect(await run(['node', '--version'])).toBe(process.version)
      expect(pinned.split('.')[0]).toBe(process.versions.node.split('.')[0])
      const modules = await run(['ls', '/app/node_modules'])
      for (const dev of ['vitest', 'typescript', 'eslint']) expect(modules.split('\n')).not.toContain(dev)
      expect(modules.split('\n')).toContain('@kubernetes')
    } finally {
      await buildah(['rm', container])
    }
  }, 1_200_000)

  it('is what the release action builds and pushes for a release of berth: the same digest, tagged with the version', async () => {
    expect(digest).not.toBe('')
    // The action's step as a runner runs it, with the ground's buildah store (bases already made) and registry.
    const { root, runroot } = imageStore()
    const storage = join(g.scratch(), 'storage.conf')
    await writeFile(storage, `[storage]\ndriver = "overlay"\ngraphroot = "${root}"\nrunroot = "${runroot}"\n`)
    const registry = g.ground.registries.plain.host
    const { outputs, summary } = await runCompositeAction(join(REPO_ROOT, '.github/actions/image/action.yml'), {
      scratch: g.scratch(),
      inputs: { 'version': `v${VERSION}`, 'image': `${registry}/Release/Berth`, 'tls-verify': 'false' },
      github: { repository_owner: 'berth-dev' },
      env: { CONTAINERS_STORAGE_CONF: storage, BUILDAH_RUNTIME: 'runc' },
    })
    expect(outputs).toEqual({ reference: `${registry}/release/berth:${VERSION}`, digest })
    expect(summary).toContain(`berth install --image ${registry}/release/berth@${digest} --apply`)
  }, 600_000)
})

describe('berth as pods on a real node', () => {
  const image = (): string => `${g.ground.registries.plain.host}/berth:${VERSION}`
  const berth = (args: readonly string[]): Promise<unknown> =>
    execa(process.execPath, [join(REPO_ROOT, 'bin/berth.js'), ...args, '--kubeconfig', g.ground.kubeconfig])

  beforeAll(async () => {
    // The first describe pushed it; built here when that test is filtered out.
    const { local } = await buildImage({ say })
    await pushImage(local, image(), true)
    await berth(['install', '--image', image(), '--apply'])
  }, 1_200_000)
  afterAll(async () => {
    // Leave nothing running on the node for the ground's teardown to kill.
    await kubectl(['scale', 'deployment/berth-reconciler', '-n', SYSTEM, '--replicas=0']).catch(() => undefined)
  })

  it('runs the Deployment from berth install unchanged: Ready by its probes, non-root, read-only root, in-cluster auth', async () => {
    const running = await eventually(pods, (list) => list.length === 2 && list.every(ready), 180_000)
    for (const pod of running) expect(pod.spec.nodeName).toBe(NODE_NAME)
    const [first] = running
    const exec = (command: readonly string[]): Promise<{ stdout: string; stderr: string; exitCode?: number }> =>
      execa(
        g.ground.parts.kubectl,
        ['--kubeconfig', g.ground.kubeconfig, 'exec', '-n', SYSTEM, first?.metadata.name ?? '', '--', ...command],
        { reject: false },
      )
    expect((await exec(['id', '-u'])).stdout.trim()).toBe('65532')
    const write = await exec(['sh', '-c', 'echo x > /app/written'])
    expect(write.exitCode).not.toBe(0)
    expect(write.stderr).toMatch(/Read-only file system/)
    // Only the emptyDirs take writes.
    expect((await exec(['sh', '-c', 'echo x > /var/cache/berth/written && echo ok'])).stdout.trim()).toBe('ok')
    // In-cluster: the token the kubelet projected, the apiserver through the kubernetes Service (kube-proxy).
    expect((await exec(['sh', '-c', 'test -s /var/run/secrets/kubernetes.io/serviceaccount/token && echo ok'])).stdout)
      .toContain('ok')
    expect((await exec(['printenv', 'KUBERNETES_SERVICE_HOST'])).stdout.trim()).toBe('10.0.0.1')
    const holder = await eventually(leader, (p) => p !== undefined, 60_000)
    expect(holder).toBeDefined()

    // The metrics Service, through kube-proxy from the host, reaches the reconcilers' metrics.
    const service = JSON.parse(await kubectl(['get', 'service', 'berth-reconciler-metrics', '-n', SYSTEM, '-o', 'json'])) as {
      spec: { clusterIP: string; ports: Array<{ port: number }> }
    }
    const metrics = await eventually(
      () =>
        fetch(`http://${service.spec.clusterIP}:${service.spec.ports[0]?.port ?? 0}/metrics`).then(
          (r) => r.text(),
          () => '',
        ),
      (text) => text.includes('berth_leader'),
      30_000,
    )
    expect(metrics).toMatch(/^berth_leader \d/m)

    // It reconciles, as its ServiceAccount, from the registry on the bridge.
    const repository = `${g.ground.registries.plain.host}/${g.repository}/app`
    await publishApp(g.scratch(), repository, '1.0.0', { cm: configMap('from-a-pod', { v: '1' }) })
    await g.kube().apply(environment(g.namespace, 'app', {
      source: { repository: `oci://${repository}`, plainHTTP: true },
      version: '1.0.0',
    }))
    const applied = await eventually(() => env('app'), (e) => e?.status?.lastAppliedVersion === '1.0.0', 60_000)
    expect(readyOf(applied)).toBe('True')
    expect(await g.kube().get(configMap('from-a-pod', {}, g.namespace) as never)).toBeDefined()
    for (const pod of await pods()) expect(pod.status.containerStatuses?.[0]?.restartCount).toBe(0)
  }, 300_000)

  it('has its ServiceAccount\'s rights and no more: a kind outside them is refused until berth install --allow', async () => {
    const repository = `${g.ground.registries.plain.host}/${g.repository}/rbac`
    const role = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'reader' },
      rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }],
    }
    await publishApp(g.scratch(), repository, '1.0.0', { role, cm: configMap('beside-the-role', { v: '1' }) })
    await g.kube().apply(environment(g.namespace, 'rbac', {
      source: { repository: `oci://${repository}`, plainHTTP: true },
      version: '1.0.0',
    }))
    const refused = await eventually(() => env('rbac'), (e) => readyOf(e) === 'False', 60_000)
    expect(refused?.status?.conditions?.find((c) => c.type === 'Ready')?.message).toMatch(/forbidden.*roles/is)
    expect(await g.kube().get(configMap('beside-the-role', {}, g.namespace) as never)).toBeUndefined()

    await berth(['install', '--image', image(), '--allow', 'roles.rbac.authorization.k8s.io', '--apply'])
    await berth(['reconcile', 'rbac', '-n', g.namespace, '--wait', '--timeout', '90s'])
    expect((await env('rbac'))?.status?.lastAppliedVersion).toBe('1.0.0')
    expect(await g.kube().get({ ...role, metadata: { name: 'reader', namespace: g.namespace } })).toBeDefined()
  }, 300_000)

  it('reads the projected token again when the kubelet rotates it', async () => {
    const holder = await eventually(leader, (p) => p !== undefined, 60_000)
    const name = holder?.metadata.name ?? ''
    // What the kubelet does on rotation, done now rather than in 48 minutes: a new token, swapped in atomically. A
    // token of a ServiceAccount with no rights: a reconciler that reads the file again is refused as that account (it
    // then loses the Lease and exits; the kubelet restarts it with the pod's own token).
    await kubectl(['create', 'serviceaccount', 'nobody', '-n', SYSTEM])
    const nobody = (await kubectl(['create', 'token', 'nobody', '-n', SYSTEM, '--duration=1h'])).trim()
    await swapToken(holder, nobody)
    const refused = await eventually(
      async () => `${await logsOf(name, true)}${await logsOf(name)}`,
      (logs) => logs.includes(`User \\"system:serviceaccount:${SYSTEM}:nobody\\" cannot`),
      150_000,
      1000,
    )
    expect(refused).not.toContain(nobody)
    // It leads and reconciles again.
    const after = Date.now()
    await eventually(
      lease,
      (l) => Boolean(l?.spec.holderIdentity) && Date.parse(l?.spec.renewTime ?? '') > after,
      120_000,
    )
    await eventually(pods, (list) => list.length === 2 && list.every(ready), 120_000)
  }, 300_000)

  it('hands over within the lease duration when the leader\'s pod is deleted, never reconciling one Environment twice at once', async () => {
    const before = await eventually(leader, (p) => p !== undefined, 60_000)
    const name = before?.metadata.name ?? ''
    const duration = (await lease())?.spec.leaseDurationSeconds ?? 0
    expect(duration).toBeGreaterThan(0)
    const oldLogs = execa(
      g.ground.parts.kubectl,
      ['--kubeconfig', g.ground.kubeconfig, 'logs', '-f', '-n', SYSTEM, name],
      { reject: false },
    )
    const deletedAt = Date.now()
    await kubectl(['delete', 'pod', '-n', SYSTEM, name, '--wait=false'])
    const after = await eventually(leader, (p) => p !== undefined && p.metadata.name !== name, duration * 1000 + 30_000)
    expect(Date.now() - deletedAt).toBeLessThan(duration * 1000)
    const newName = after?.metadata.name ?? ''
    // The old leader stopped, and let go, before the new one took over: its last pass ended before the other's
    // first began.
    const old = entries((await oldLogs).stdout)
    expect(old.at(-1)?.msg).toBe('stopped')
    const fresh = entries(await logsOf(newName))
    const became = fresh.find((e) => e.msg === 'became leader')
    expect(became).toBeDefined()
    const tookOver = Date.parse(became?.time ?? '')
    for (const pass of fresh.filter((e) => e.msg === 'reconciled')) expect(Date.parse(pass.time)).toBeGreaterThanOrEqual(tookOver)
    for (const pass of old.filter((e) => e.msg === 'reconciled')) expect(Date.parse(pass.time)).toBeLessThanOrEqual(tookOver)
    // The Deployment replaces the pod; two Ready again.
    await eventually(pods, (list) => list.length === 2 && list.every(ready), 120_000)
  }, 300_000)

  it('converges with nothing lost after the leader is killed in the middle of an apply', async () => {
    const target = `${g.namespace}-big`
    await g.kube().apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: target } })
    const repository = `${g.ground.registries.plain.host}/${g.repository}/big`
    const COUNT = 800
    await publishApp(g.scratch(), repository, '1.0.0', {
      'old-only': configMap('old-only', { v: '1' }),
      ...Object.fromEntries([...Array(5).keys()].map((i) => [`cm-${i}`, configMap(`cm-${i}`, { v: '1' })])),
    })
    const big = Object.fromEntries([...Array(COUNT).keys()].map((i) => [`cm-${i}`, configMap(`cm-${i}`, { v: '2' })]))
    await publishApp(g.scratch(), repository, '2.0.0', big)
    const spec = { source: { repository: `oci://${repository}`, plainHTTP: true }, targetNamespace: target }
    await g.kube().apply(environment(g.namespace, 'big', { ...spec, version: '1.0.0' }))
    await eventually(() => env('big'), (e) => e?.status?.lastAppliedVersion === '1.0.0', 60_000)

    const holder = await eventually(leader, (p) => p !== undefined, 60_000)
    const pid = await containerPid(holder)
    // Watch the target namespace; kill the leader's process as the first object of 2.0.0 lands. The watch lists
    // the 6 objects of 1.0.0 first: after those, it is known to be watching.
    const watch = execa(
      g.ground.parts.kubectl,
      [
        '--kubeconfig',
        g.ground.kubeconfig,
        'get',
        'configmaps',
        '-n',
        target,
        '--watch',
        '-o',
        'name',
        '-l',
        `${OWNER_LABELS.name}=big`,
      ],
      { reject: false, buffer: false },
    )
    let lines = 0
    let watching: () => void = () => undefined
    const listed = new Promise<void>((resolve) => (watching = resolve))
    const killed = new Promise<void>((resolve) => {
      watch.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        const before = lines
        lines += chunk.split('\n').filter(Boolean).length
        if (lines >= 6) watching()
        if (before <= 6 && lines > 6) {
          process.kill(pid, 'SIGKILL')
          resolve()
        }
      })
    })
    await listed
    await g.kube().apply(environment(g.namespace, 'big', { ...spec, version: '2.0.0' }))
    await killed
    watch.kill()
    const atKill = await v2Count(target)
    // The kill came in the middle: some of 2.0.0 applied, not all (else this test proves nothing).
    expect(atKill).toBeGreaterThan(0)
    expect(atKill).toBeLessThan(COUNT)

    const done = await eventually(
      () => env('big'),
      (e) => e?.status?.lastAppliedVersion === '2.0.0' && readyOf(e) === 'True',
      180_000,
    )
    expect(await v2Count(target)).toBe(COUNT)
    expect(done?.status?.inventory?.length).toBe(COUNT)
    expect(await g.kube().get(configMap('old-only', {}, target) as never)).toBeUndefined()
    // Killed, the container was restarted by the kubelet.
    const restarted = await eventually(
      pods,
      (list) => list.some((p) => (p.status.containerStatuses?.[0]?.restartCount ?? 0) >= 1),
      120_000,
    )
    expect(restarted.length).toBe(2)
  }, 600_000)

  /** ConfigMaps of 2.0.0 (data v=2) in `namespace`. */
  async function v2Count(namespace: string): Promise<number> {
    const list = JSON.parse(await kubectl(['get', 'configmaps', '-n', namespace, '-o', 'json'])) as {
      items: Array<{ data?: Record<string, string> }>
    }
    return list.items.filter((c) => c.data?.v === '2').length
  }

  /** The host pid of a pod's reconciler process, from containerd. */
  async function containerPid(pod: Pod | undefined): Promise<number> {
    const id = (pod?.status.containerStatuses?.[0]?.containerID ?? '').replace(/^containerd:\/\//, '')
    const tasks = await execa('ctr', ['--address', join(g.ground.dir, 'node', 'containerd.sock'), '-n', 'k8s.io', 'tasks', 'ls'])
    const line = tasks.stdout.split('\n').find((l) => l.startsWith(id))
    const pid = Number(line?.split(/\s+/)[1])
    expect(pid).toBeGreaterThan(1)
    return pid
  }

  /** Replace the token in `pod`'s projected volume the way the kubelet's atomic writer does: a new ..data. */
  async function swapToken(pod: Pod | undefined, token: string): Promise<void> {
    const uid = pod?.metadata.uid ?? ''
    const volumes = join(g.ground.dir, 'node', 'kubelet', 'pods', uid, 'volumes', 'kubernetes.io~projected')
    const script = `set -e
dir=$(ls -d "$1"/kube-api-access-*)
new="$dir/..swap_$(date +%s%N)"
mkdir "$new"
cp "$dir/..data/ca.crt" "$dir/..data/namespace" "$new/"
printf %s "$2" > "$new/token"
chmod 0644 "$new/token"
ln -s "$(basename "$new")" "$dir/..data_tmp"
mv -T "$dir/..data_tmp" "$dir/..data"`
    // The volume is a tmpfs in containerd's and the kubelet's mount namespace.
    const containerd = g.ground.processes.find((p) => p.name === 'containerd')?.pid ?? 0
    await execa('nsenter', [`--mount=/proc/${containerd}/ns/mnt`, '--', 'sh', '-c', script, 'sh', volumes, token])
  }
})

/** The JSON log lines of a reconciler. */
function entries(logs: string): Array<{ msg: string; time: string }> {
  return logs.split('\n').flatMap((line) => {
    try {
      return [JSON.parse(line) as { msg: string; time: string }]
    } catch {
      return []
    }
  })
}
