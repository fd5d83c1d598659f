/**
 * What an operator installs: deploy/ applied to the real apiserver, and the rights it grants checked with `kubectl
 * auth can-i`. berth's image running that Deployment as pods on a real node: test/node.test.ts.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { execa } from 'execa'
import { loadAll } from 'js-yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Environment } from '../api/environment.ts'
import { writeKubeconfig } from './ground/ground.ts'
import { configMap } from './support/config-repo.ts'
import { environment, passes, publishApp } from './support/environments.ts'
import { eventually } from './support/eventually.ts'
import { ROOT, useGround } from './support/ground.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'

const SYSTEM = 'berth-system'
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
