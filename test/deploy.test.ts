/**
 * What an operator installs: deploy/ applied to the real apiserver, the rights it grants
 * checked with `kubectl auth can-i`, and the image (the Dockerfile laid out on disk, run as
 * its USER with the Deployment's own args and env, finding its ServiceAccount token where a
 * pod has it) reconciling.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { chmod, chown, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { loadAll } from 'js-yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Environment } from '../api/environment.ts'
import { ORAS_VERSION } from './ground/parts.ts'
import { writeKubeconfig } from './ground/ground.ts'
import { freePort } from './ground/processes.ts'
import { configMap } from './support/config-repo.ts'
import { environment, passes, publishApp } from './support/environments.ts'
import { eventually } from './support/eventually.ts'
import { ROOT, useGround } from './support/ground.ts'
import { layOutImage } from './support/image.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'

const SYSTEM = 'berth-system'
/**
 * Run in a fresh mount namespace as root: mount the ServiceAccount files ($1) where pods have them, then become the
 * image's user ($2) and exec the rest.
 */
const MOUNT_SERVICE_ACCOUNT = `set -e
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/secrets/kubernetes.io/serviceaccount
cp "$1"/token "$1"/ca.crt "$1"/namespace /run/secrets/kubernetes.io/serviceaccount/
uid=\${2%:*}; gid=\${2#*:}; shift 2
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups "$@"`
const SA = `system:serviceaccount:${SYSTEM}:berth-reconciler`
type Container = {
  args: string[]
  env: Array<{ name: string; value?: string; valueFrom?: { fieldRef: { fieldPath: string } } }>
}
type Deployment = { spec: { template: { spec: { containers: Container[] } & Record<string, unknown> } } }
type Lease = { spec: { holderIdentity?: string } }

const kubectl = (args: string[]): Promise<{ stdout: string; stderr: string; exitCode?: number | undefined }> =>
  execa(g.ground.parts.kubectl, ['--kubeconfig', g.ground.kubeconfig, ...args], { reject: false })
const berth = (args: string[]): Promise<{ stdout: string; stderr: string }> =>
  execa(process.execPath, [join(ROOT, 'bin/berth.js'), ...args, '--kubeconfig', g.ground.kubeconfig])
const deployment = async (): Promise<Deployment> =>
  (await g.kube().get<Deployment>({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'berth-reconciler', namespace: SYSTEM },
  })) as Deployment
const { envRef, ready } = passes(g)
const get = (name: string): Promise<Environment | undefined> => g.kube().get<Environment>(envRef(name))
const readyOf = (e: Environment | undefined): ReturnType<typeof ready> => (e ? ready(e) : undefined)
const lease = (): Promise<Lease | undefined> =>
  g.kube().get<Lease>({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'berth-reconciler', namespace: SYSTEM },
  })

describe('deploy/: what an operator installs', () => {
  beforeAll(async () => {
    // A server-side dry run checks namespaced objects against their namespace, which must exist.
    await g.kube().apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: SYSTEM } })
    // As after `berth install --crds-only --apply`: kubectl must co-own the CRD with berth without a conflict.
    await berth(['install', '--crds-only', '--apply'])
  })

  it('applies cleanly: a server-side dry run that changes nothing, then for real with no warning', async () => {
    const dry = await kubectl(['apply', '--server-side', '--dry-run=server', '-k', join(ROOT, 'deploy')])
    expect(dry.stderr).toBe('')
    expect(dry.stdout).toContain('deployment.apps/berth-reconciler serverside-applied (server dry run)')
    expect(
      await g
        .kube()
        .get({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'berth-apply' } }),
    ).toBeUndefined()

    const real = await kubectl(['apply', '--server-side', '-k', join(ROOT, 'deploy')])
    expect(real.exitCode).toBe(0)
    expect(real.stderr).not.toMatch(/warn/i)
    const documents = (await readFile(join(ROOT, 'deploy/berth.yaml'), 'utf8')).split(/^---$/m).length
    expect(real.stdout.trim().split('\n')).toHaveLength(documents)
    expect(
      (await kubectl(['wait', '--for=condition=Established', 'crd/environments.berth.dev', '--timeout=30s'])).exitCode,
    ).toBe(0)

    // Stored as written: no field is dropped or defaulted differently, which would make SSA
    // conflicts between berth and kubectl (a `priority: 0` once did).
    for (const object of loadAll(await readFile(join(ROOT, 'deploy/berth.yaml'), 'utf8')) as Array<{
      apiVersion: string
      kind: string
      metadata: { name: string; namespace?: string }
    }>) {
      const live = await g.kube().get<object>(object)
      expect(missingFrom(object, live), `${object.kind} ${object.metadata.name}`).toEqual([])
    }
    await berth(['install', '--apply'])
    const again = await kubectl(['apply', '--server-side', '-k', join(ROOT, 'deploy')])
    expect(again.stderr).toBe('')
  })

  it('runs a pod the restricted Pod Security Standard admits, in a namespace that refuses any other', async () => {
    const template = (await deployment()).spec.template.spec
    const pod = (spec: object): string =>
      JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'admission-check', namespace: SYSTEM }, spec })
    const create = async (spec: object): Promise<{ stderr: string; exitCode?: number | undefined }> => {
      const file = join(g.scratch(), 'pod.json')
      await writeFile(file, pod(spec))
      return await kubectl(['create', '--dry-run=server', '-f', file])
    }
    expect(await create(template)).toMatchObject({ exitCode: 0, stderr: '' })
    // The same pod without its hardening is refused: the check above could fail.
    const [container] = template.containers
    const refused = await eventually(
      () => create({ ...template, securityContext: {}, containers: [{ ...container, securityContext: {} }] }),
      (r) => r.exitCode !== 0,
      10_000,
    )
    expect(refused.stderr).toMatch(/violates PodSecurity "restricted/)
  })

  it('grants the reconciler exactly what it needs', async () => {
    const can = async (...args: string[]): Promise<boolean> =>
      (await kubectl(['auth', 'can-i', '--as', SA, ...args])).stdout.trim() === 'yes'
    const allowed = [
      ['watch', 'environments.berth.dev', '-A'],
      ['patch', 'environments.berth.dev', '--subresource=status', '-n', g.namespace],
      ['get', 'secrets', '-n', g.namespace],
      ['create', 'events', '-n', g.namespace],
      ['patch', 'deployments.apps', '-n', g.namespace],
      ['delete', 'configmaps', '-n', g.namespace],
      ['create', 'leases.coordination.k8s.io', '-n', SYSTEM],
      ['update', 'leases.coordination.k8s.io/berth-reconciler', '-n', SYSTEM],
    ]
    const refused = [
      ['list', 'secrets', '-A'],
      ['watch', 'secrets', '-n', g.namespace],
      ['patch', 'secrets', '-n', g.namespace],
      ['update', 'leases.coordination.k8s.io/someone-else', '-n', SYSTEM],
      ['create', 'leases.coordination.k8s.io', '-n', g.namespace],
      ['create', 'clusterroles.rbac.authorization.k8s.io'],
      ['create', 'rolebindings.rbac.authorization.k8s.io', '-n', g.namespace],
      ['delete', 'namespaces'],
      ['create', 'pods', '-n', g.namespace],
      ['update', 'environments.berth.dev', '-n', g.namespace],
    ]
    for (const args of allowed) expect(await can(...args), args.join(' ')).toBe(true)
    for (const args of refused) expect(await can(...args), args.join(' ')).toBe(false)
  })
})

describe('the image, run as the Deployment runs it', () => {
  let dir = ''
  let reconciler: ChildProcess | undefined
  let logs = ''
  let token = ''

  beforeAll(async () => {
    await berth(['install', '--apply'])
    dir = await mkdtemp(join(tmpdir(), 'berth-image-'))
    // The image's USER must be able to reach its files, as in a real image.
    await chmod(dir, 0o755)
  })
  afterAll(async () => {
    reconciler?.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
  })

  it('reconciles with the ServiceAccount\'s rights, refuses a kind outside them until `berth install --allow`, and hands back the Lease on SIGTERM', async () => {
    const image = await layOutImage(join(ROOT, 'Dockerfile'), ROOT, dir, { oras: { '/out/oras': g.ground.parts.oras } })
    expect(image.args.ORAS_VERSION).toBe(ORAS_VERSION)
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>
    }
    expect(image.args.NODE_VERSION).toBe(/\d+/.exec(pkg.devDependencies.node ?? '')?.[0])
    // The base image's Node, at the version package.json pins for the project.
    await copyFile(process.execPath, image.path('/usr/local/bin/node'))
    await chmod(image.path('/usr/local/bin/node'), 0o755)

    const user = image.user ?? { uid: 65532, gid: 65532 }
    const works = async (command: string, args: string[]): Promise<boolean> =>
      (await execa(command, args, { reject: false })).exitCode === 0
    const inCluster
      = process.getuid?.() === 0
        && (await works('unshare', ['--mount', 'true']))
        && (await works('setpriv', ['--version']))
    const runAs = inCluster ? user : undefined
    // Only the emptyDir volumes are writable; everything else in the image belongs to root.
    for (const writable of ['/tmp', '/var/cache/berth']) {
      await mkdir(image.path(writable), { recursive: true })
      if (runAs) await chown(image.path(writable), runAs.uid, runAs.gid)
    }
    token = (await kubectl(['create', 'token', 'berth-reconciler', '-n', SYSTEM, '--duration=1h'])).stdout.trim()
    expect(token).toMatch(/^ey/)
    // What the kubelet mounts into the pod; the image finds it where every in-cluster client looks.
    const mounted = join(dir, 'serviceaccount')
    await mkdir(mounted, { mode: 0o755 })
    await writeFile(join(mounted, 'token'), token, { mode: 0o644 })
    await copyFile(g.ground.ca.cert, join(mounted, 'ca.crt'))
    await chmod(join(mounted, 'ca.crt'), 0o644)
    await writeFile(join(mounted, 'namespace'), SYSTEM, { mode: 0o644 })
    const container = (await deployment()).spec.template.spec.containers[0] as Container
    const port = await freePort()
    const inImage = (value: string): string => (value.startsWith('/') ? image.path(value) : value)
    const args = container.args.map((a) =>
      a
        .replace(/^--metrics-address=.*/, `--metrics-address=127.0.0.1:${port}`)
        .replace(/=(\/.*)$/, (_, p: string) => `=${inImage(p)}`),
    )
    const env: Record<string, string> = { PATH: `${image.path('/usr/local/bin')}:/usr/bin:/bin` }
    for (const [key, value] of Object.entries(image.env)) env[key] = inImage(value)
    for (const e of container.env)
      env[e.name] = e.valueFrom?.fieldRef.fieldPath === 'metadata.namespace' ? SYSTEM : inImage(e.value ?? '')
    const [entry = '', ...entryArgs] = image.entrypoint
    expect(entry).toBe('node')
    const command = [image.path('/usr/local/bin/node'), ...entryArgs.map(inImage), ...args]
    const apiserver = new URL(g.ground.apiserverUrl)
    if (inCluster) {
      // As in a pod: the token under /var/run/secrets (a private mount namespace with its own
      // /run, so the machine's is untouched) and the apiserver in KUBERNETES_SERVICE_*.
      Object.assign(env, { KUBERNETES_SERVICE_HOST: apiserver.hostname, KUBERNETES_SERVICE_PORT: apiserver.port })
      reconciler = spawn(
        'unshare',
        [
          '--mount',
          'sh',
          '-c',
          MOUNT_SERVICE_ACCOUNT,
          'sh',
          mounted,
          `${String(user.uid)}:${String(user.gid)}`,
          ...command,
        ],
        {
          env,
          cwd: image.path('/app'),
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      )
    } else {
      // Without root there is no mount namespace: the same token, through a kubeconfig.
      const kubeconfig = image.path('/tmp/kubeconfig')
      await writeKubeconfig(kubeconfig, {
        server: g.ground.apiserverUrl,
        ca: g.ground.ca.cert,
        token,
        user: 'berth-reconciler',
        context: 'in-cluster',
        mode: 0o644,
      })
      reconciler = spawn(command[0] ?? '', [...command.slice(1), `--kubeconfig=${kubeconfig}`], {
        env,
        cwd: image.path('/app'),
        stdio: ['ignore', 'ignore', 'pipe'],
      })
    }
    reconciler.stderr?.setEncoding('utf8').on('data', (chunk: string) => (logs += chunk))
    const exited = new Promise<number | null>((resolve) => reconciler?.on('exit', resolve))

    await eventually(lease, (l) => Boolean(l?.spec.holderIdentity), 30_000).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${logs}`)
    })
    // Ready once the new leader's watch runs (a moment after it takes the Lease).
    await eventually(
      async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status,
      (status) => status === 200,
      10_000,
    )

    const repository = `${g.ground.registries.plain.host}/${g.repository}`
    await publishApp(g.scratch(), `${repository}/app`, '1.0.0', { cm: configMap('from-image', { v: '1' }) })
    await g.kube().apply(
      environment(g.namespace, 'app', {
        source: { repository: `oci://${repository}/app`, plainHTTP: true },
        version: '1.0.0',
      }),
    )
    const applied = await eventually(
      () => get('app'),
      (e) => e?.status?.lastAppliedVersion === '1.0.0',
      30_000,
    )
    expect(readyOf(applied)?.status).toBe('True')
    expect(await g.kube().get(configMap('from-image', {}, g.namespace) as never)).toBeDefined()

    // A Role is outside berth-apply: refused by the dry run, so nothing of that artifact lands.
    const role = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'reader' },
      rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }],
    }
    await publishApp(g.scratch(), `${repository}/rbac`, '1.0.0', { role, cm: configMap('beside-the-role', { v: '1' }) })
    await g.kube().apply(
      environment(g.namespace, 'rbac', {
        source: { repository: `oci://${repository}/rbac`, plainHTTP: true },
        version: '1.0.0',
      }),
    )
    const refused = await eventually(
      () => get('rbac'),
      (e) => readyOf(e)?.status === 'False',
      30_000,
    )
    expect(readyOf(refused)?.message).toMatch(/forbidden.*roles/is)
    expect(await g.kube().get(configMap('beside-the-role', {}, g.namespace) as never)).toBeUndefined()

    await berth(['install', '--allow', 'roles.rbac.authorization.k8s.io', '--apply'])
    await berth(['reconcile', 'rbac', '-n', g.namespace, '--wait', '--timeout', '60s'])
    expect((await get('rbac'))?.status?.lastAppliedVersion).toBe('1.0.0')
    expect(await g.kube().get({ ...role, metadata: { name: 'reader', namespace: g.namespace } })).toBeDefined()

    reconciler.kill('SIGTERM')
    expect(await exited).toBe(0)
    expect((await lease())?.spec.holderIdentity ?? '').toBe('')
    expect(logs).not.toContain(token)
  }, 300_000)
})

/** Paths where `wanted` has a value `live` does not hold (arrays element by element). */
function missingFrom(wanted: unknown, live: unknown, path = ''): string[] {
  if (wanted !== null && typeof wanted === 'object') {
    if (live === null || typeof live !== 'object') return [path]
    return Object.entries(wanted).flatMap(([k, v]) =>
      missingFrom(v, (live as Record<string, unknown>)[k], `${path}.${k}`),
    )
  }
  return wanted === live ? [] : [path]
}

describe('berth install --watch-namespace: rights in one namespace only', () => {
  let reconciler: ChildProcess | undefined
  afterAll(() => {
    reconciler?.kill('SIGKILL')
  })

  it('reconciles its namespace, cannot reach past it, and keeps its Lease at home', async () => {
    const home = `${g.namespace}-berth`
    const elsewhere = `${g.namespace}-other`
    await g.kube().apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: elsewhere } })
    // A cluster-wide install before this one would leave its ClusterRoleBindings behind.
    for (const name of ['berth-reconciler', 'berth-apply'])
      await g
        .kube()
        .delete({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name } })
    await berth(['install', '--namespace', home, '--watch-namespace', g.namespace, '--apply'])

    const sa = `system:serviceaccount:${home}:berth-reconciler`
    const can = async (...args: string[]): Promise<boolean> =>
      (await kubectl(['auth', 'can-i', '--as', sa, ...args])).stdout.trim() === 'yes'
    expect(await can('watch', 'environments.berth.dev', '-n', g.namespace)).toBe(true)
    expect(await can('patch', 'configmaps', '-n', g.namespace)).toBe(true)
    expect(await can('watch', 'environments.berth.dev', '-A')).toBe(false)
    expect(await can('patch', 'configmaps', '-n', elsewhere)).toBe(false)
    expect(await can('get', 'secrets', '-n', elsewhere)).toBe(false)

    const token = (await kubectl(['create', 'token', 'berth-reconciler', '-n', home, '--duration=1h'])).stdout.trim()
    const kubeconfig = join(g.scratch(), 'scoped.kubeconfig')
    await writeKubeconfig(kubeconfig, {
      server: g.ground.apiserverUrl,
      ca: g.ground.ca.cert,
      token,
      user: 'berth-reconciler',
      context: 'scoped',
    })
    const container = (
      await g.kube().get<Deployment>({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'berth-reconciler', namespace: home },
      })
    )?.spec.template.spec.containers[0] as Container
    expect(container.args).toContain(`--namespace=${g.namespace}`)
    const args = container.args.map((a) =>
      a
        .replace(/^--metrics-address=.*/, '--metrics-address=')
        .replace(/^--cache-dir=.*/, `--cache-dir=${join(g.scratch(), 'scoped-cache')}`),
    )
    let logs = ''
    reconciler = spawn(process.execPath, [join(ROOT, 'bin/berth.js'), ...args, `--kubeconfig=${kubeconfig}`], {
      env: { ...process.env, POD_NAMESPACE: home },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    reconciler.stderr?.setEncoding('utf8').on('data', (c: string) => (logs += c))
    const exited = new Promise<number | null>((resolve) => reconciler?.once('exit', resolve))

    const repository = `${g.ground.registries.plain.host}/${g.repository}/scoped`
    await publishApp(g.scratch(), repository, '1.0.0', { cm: configMap('scoped', { v: '1' }) })
    const spec = { source: { repository: `oci://${repository}`, plainHTTP: true }, version: '1.0.0' }
    await g.kube().apply(environment(g.namespace, 'inside', spec))
    await g.kube().apply(environment(g.namespace, 'outside', { ...spec, targetNamespace: elsewhere }))
    await eventually(
      () => get('inside'),
      (e) => readyOf(e)?.status === 'True',
      30_000,
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${logs}`)
    })
    const refused = await eventually(
      () => get('outside'),
      (e) => readyOf(e)?.status === 'False',
      30_000,
    )
    expect(readyOf(refused)?.message).toMatch(new RegExp(`forbidden.*${elsewhere}`, 's'))
    expect(await g.kube().get(configMap('scoped', {}, elsewhere) as never)).toBeUndefined()
    expect(
      (
        await g.kube().get<Lease>({
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: 'berth-reconciler', namespace: home },
        })
      )?.spec.holderIdentity,
    ).toBeTruthy()

    reconciler.kill('SIGTERM')
    expect(await exited).toBe(0)
  }, 120_000)
})
