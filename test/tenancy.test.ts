/**
 * Tenancy: a lockdown install (`--default-service-account`), two teams each with a ServiceAccount
 * bound to a namespaced Role, and a real `berth reconciler` process holding only the lockdown's
 * rights. Whatever a team's artifact or Environment asks for beyond its Role is refused before
 * anything is applied; what it may do works through impersonation.
 */
import { join } from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Environment } from '../api/environment.ts'
import { Kube, loadKubeConfig } from '../shared/kube.ts'
import { applyInstall } from '../install/apply.ts'
import { DEFAULT_INSTALL, installObjects } from '../install/manifests.ts'
import { writeKubeconfig } from './ground/ground.ts'
import { configMap, deployment } from './support/config-repo.ts'
import { applyEnvironment, installCrd, passes, publishApp } from './support/environments.ts'
import { eventually } from './support/eventually.ts'
import { failureOf } from './support/failure.ts'
import { ROOT, useGround } from './support/ground.ts'
import { userBoundTo } from './support/users.ts'
import { type ReconcilerProcess, startReconciler } from './support/reconciler-process.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'

const rbac = 'rbac.authorization.k8s.io'

describe('tenancy: each Environment acts with its own ServiceAccount', () => {
  const system = `${g.namespace}-sys`
  const teamA = `${g.namespace}-a`
  const teamB = `${g.namespace}-b`
  const reconcilerUser = `system:serviceaccount:${system}:berth-reconciler`
  const deployerA = `system:serviceaccount:${teamA}:deployer`
  let repository = ''
  let reconciler: ReconcilerProcess | undefined
  const a = { ...g, namespace: teamA }
  const { envRef } = passes(a)
  const env = (name: string): Promise<Environment | undefined> => g.kube().get<Environment>(envRef(name))
  const ready = (e: Environment | undefined): Record<string, unknown> | undefined =>
    e?.status?.conditions?.find((c) => c.type === 'Ready')
  const cm = (namespace: string, name: string): Promise<{ data?: Record<string, string> } | undefined> =>
    g.kube().get({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace } })
  const kubectl = (args: string[]): Promise<{ stdout: string; stderr: string; exitCode?: number | undefined }> =>
    execa(g.ground.parts.kubectl, ['--kubeconfig', g.ground.kubeconfig, ...args], { reject: false })
  const berth = (args: string[], kubeconfig = g.ground.kubeconfig): Promise<{ stdout: string; stderr: string }> =>
    execa(process.execPath, [join(ROOT, 'bin/berth.js'), ...args, '--kubeconfig', kubeconfig])
  /** Pin `spec` on team A's `app` and wait for the reconciler's verdict on that generation. */
  const pin = async (spec: Record<string, unknown>): Promise<Environment | undefined> => {
    const patched = await g.kube().mergePatch<Environment>(envRef('app'), { spec })
    return await eventually(
      () => env('app'),
      (e) =>
        (e?.status?.observedGeneration ?? 0) >= (patched.metadata.generation ?? 0)
        && ready(e)?.reason !== 'Progressing',
      20_000,
    )
  }
  /** A version refused for want of rights: reason Forbidden naming object, verb and identity; 1.0.0 still runs. */
  const refused = async (spec: Record<string, unknown>, object: RegExp): Promise<void> => {
    const e = await pin(spec)
    expect(ready(e)).toMatchObject({ status: 'False', reason: 'Forbidden' })
    const message = String(ready(e)?.message)
    expect(message).toMatch(object)
    expect(message).toContain(`User "${deployerA}" cannot patch resource`)
    expect(message).toContain('still running 1.0.0')
    expect(e?.status?.lastAppliedVersion).toBe('1.0.0')
    expect((await cm(teamA, 'settings'))?.data).toEqual({ v: '1' })
  }

  beforeAll(async () => {
    await installCrd(g.kube())
    for (const ns of [system, teamA, teamB])
      await g.kube().apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } })
    // The lockdown install, applied as an operator would (the CRD is the ground's already).
    const objects = installObjects({ ...DEFAULT_INSTALL, namespace: system, defaultServiceAccount: 'deployer' })
    await applyInstall(
      g.kube(),
      objects.filter((o) => o.kind !== 'CustomResourceDefinition'),
      system,
    )
    // Each team: a ServiceAccount `deployer` that may manage ConfigMaps, Services and Deployments in its own
    // namespace (but not delete Services or Deployments, to see a prune it may not do).
    for (const ns of [teamA, teamB]) {
      await g.kube().apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'deployer', namespace: ns } })
      await g.kube().apply({
        apiVersion: `${rbac}/v1`,
        kind: 'Role',
        metadata: { name: 'deployer', namespace: ns },
        rules: [
          // ConfigMaps may be watched (drift in them is seen at once); Services may not (found at each pass).
          { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] },
          { apiGroups: [''], resources: ['services'], verbs: ['get', 'create', 'patch'] },
          { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'create', 'patch'] },
        ],
      })
      await g.kube().apply({
        apiVersion: `${rbac}/v1`,
        kind: 'RoleBinding',
        metadata: { name: 'deployer', namespace: ns },
        roleRef: { apiGroup: rbac, kind: 'Role', name: 'deployer' },
        subjects: [{ kind: 'ServiceAccount', name: 'deployer', namespace: ns }],
      })
    }
    repository = `${g.ground.registries.plain.host}/${g.repository}/app`
    const web = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { ports: [{ port: 80 }] } }
    const good = { settings: configMap('settings', { v: '1' }), web, extra: configMap('extra', { v: '1' }) }
    await publishApp(g.scratch(), repository, '1.0.0', good)
    await publishApp(g.scratch(), repository, '2.0.0', { ...good, other: configMap('intruder', { v: '2' }, teamB) })
    await publishApp(g.scratch(), repository, '3.0.0', {
      ...good,
      admin: {
        apiVersion: `${rbac}/v1`,
        kind: 'ClusterRoleBinding',
        metadata: { name: `${teamA}-admin` },
        roleRef: { apiGroup: rbac, kind: 'ClusterRole', name: 'cluster-admin' },
        subjects: [{ kind: 'ServiceAccount', name: 'deployer', namespace: teamA }],
      },
    })
    await publishApp(g.scratch(), repository, '4.0.0', {
      ...good,
      sys: { ...deployment('miner'), metadata: { name: 'miner', namespace: 'kube-system' } },
    })
    await publishApp(g.scratch(), repository, '5.0.0', { settings: configMap('settings', { v: '5' }) })

    // The reconciler with the lockdown's rights only: its ServiceAccount's token.
    const token = (await kubectl(['create', 'token', 'berth-reconciler', '-n', system, '--duration=1h'])).stdout.trim()
    const kubeconfig = join(g.scratch(), 'reconciler.kubeconfig')
    await writeKubeconfig(kubeconfig, {
      server: g.ground.apiserverUrl,
      ca: g.ground.ca.cert,
      token,
      user: 'r',
      context: 'r',
    })
    const started = startReconciler(kubeconfig, join(g.scratch(), 'cache'), [
      '--namespace',
      teamA,
      '--default-service-account',
      'deployer',
    ])
    reconciler = started
    await eventually(
      () => Promise.resolve(started.logs()),
      (l) => l.includes('watching Environments'),
      15_000,
    )
    await applyEnvironment(a, 'app', repository, { version: '1.0.0', interval: '1h' })
    await eventually(
      () => env('app'),
      (e) => ready(e)?.status === 'True',
      20_000,
    )
  })
  afterAll(() => {
    reconciler?.kill()
  })

  it('in lockdown the reconciler itself may not apply anything, nor read Secrets', async () => {
    for (const [verb, resource] of [
      ['create', 'deployments'],
      ['patch', 'configmaps'],
      ['get', 'secrets'],
    ] as const) {
      const can = await kubectl(['auth', 'can-i', `--as=${reconcilerUser}`, verb, resource, '-n', teamA])
      expect(can.stdout.trim(), `${verb} ${resource}`).toBe('no')
    }
    const impersonate = await kubectl([
      'auth',
      'can-i',
      `--as=${reconcilerUser}`,
      'impersonate',
      'serviceaccounts',
      '-n',
      teamA,
    ])
    expect(impersonate.stdout.trim()).toBe('yes')
  })

  it('a good artifact applies as the team\'s ServiceAccount', async () => {
    expect((await cm(teamA, 'settings'))?.data).toEqual({ v: '1' })
    const managed = (
      await g.kube().get<{ metadata: { managedFields: Array<{ manager: string }> } }>({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'settings', namespace: teamA },
      })
    )?.metadata.managedFields
    expect(managed?.map((f) => f.manager)).toContain('berth')
  })

  it('(a) an object in another team\'s namespace is refused and nothing is created', async () => {
    await refused({ version: '2.0.0' }, new RegExp(`ConfigMap ${teamB}/intruder .*configmaps "intruder" is forbidden`))
    expect(await cm(teamB, 'intruder')).toBeUndefined()
  })

  it('(b) a ClusterRoleBinding to cluster-admin is refused', async () => {
    await refused({ version: '3.0.0' }, new RegExp(`ClusterRoleBinding ${teamA}-admin .*is forbidden`))
    expect(
      await g
        .kube()
        .get({ apiVersion: `${rbac}/v1`, kind: 'ClusterRoleBinding', metadata: { name: `${teamA}-admin` } }),
    ).toBeUndefined()
  })

  it('(c) a Deployment in kube-system is refused', async () => {
    await refused({ version: '4.0.0' }, /Deployment kube-system\/miner .*is forbidden/)
    expect(
      await g
        .kube()
        .get({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'miner', namespace: 'kube-system' } }),
    ).toBeUndefined()
  })

  it('(d) spec.targetNamespace of another team is refused', async () => {
    await refused(
      { version: '1.0.0', targetNamespace: teamB },
      new RegExp(`(ConfigMap|Service) ${teamB}/\\S+ .*is forbidden`),
    )
    expect(await cm(teamB, 'settings')).toBeUndefined()
    const back = await pin({ version: '1.0.0', targetNamespace: null })
    expect(ready(back)).toMatchObject({ status: 'True' })
  })

  it('drift is seen at once through a watch made as the team\'s ServiceAccount, and corrected as it', async () => {
    await kubectl(['patch', 'configmap', 'settings', '-n', teamA, '--type=merge', '-p', '{"data":{"v":"drifted"}}'])
    // The interval is an hour and nobody asks for a pass: only the team's own watch explains this.
    await eventually(
      () => cm(teamA, 'settings'),
      (c) => c?.data?.v === '1',
      5_000,
    )
  })

  it('a kind the team may not watch is checked at each pass instead, and the reconciler says so', async () => {
    expect(reconciler?.logs()).toMatch(/deployer\|v1\|Service\|[^\n]*cannot list[^\n]*may not watch owned objects/)
    await kubectl(['label', 'service', 'web', '-n', teamA, 'berth.dev/environment=someone-else', '--overwrite'])
    await berth(['reconcile', 'app', '-n', teamA, '--wait', '--timeout', '20s'])
    const web = await g.kube().get<{ metadata: { labels: Record<string, string> } }>({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: teamA },
    })
    expect(web?.metadata.labels['berth.dev/environment']).toBe('app')
  })

  it('prune works through impersonation; what the identity may not delete stays in the inventory and is reported', async () => {
    const e = await pin({ version: '5.0.0' })
    expect(await cm(teamA, 'extra')).toBeUndefined()
    expect(ready(e)).toMatchObject({ status: 'True' })
    expect(String(ready(e)?.message)).toMatch(new RegExp(`could not prune Service ${teamA}/web`))
    expect(e?.status?.inventory?.map((i) => i.name).sort()).toEqual(['settings', 'web'])
  })

  it('a ServiceAccount that does not exist stalls, naming it', async () => {
    await applyEnvironment(a, 'ghost', repository, { version: '1.0.0', serviceAccountName: 'nobody' })
    const e = await eventually(
      () => env('ghost'),
      (x) => ready(x) !== undefined,
      20_000,
    )
    expect(ready(e)).toMatchObject({ status: 'False', reason: 'ServiceAccountNotFound' })
    expect(String(ready(e)?.message)).toContain(
      `spec.serviceAccountName: ServiceAccount ${teamA}/nobody does not exist`,
    )
    expect(e?.status?.conditions?.find((c) => c.type === 'Stalled')?.status).toBe('True')
  })

  it('publish and promote are separate rights: berth-view sees, berth-promote promotes', async () => {
    const person = (name: string, role: string): Promise<string> => userBoundTo(g, name, role, teamA)
    const viewer = await person('viewer', 'berth-view')
    const sre = await person('sre', 'berth-promote')
    expect((await berth(['status', '-n', teamA], viewer)).stdout).toMatch(/app\s+5\.0\.0\s+5\.0\.0/)
    const denied = await failureOf<{ exitCode: number; stderr: string }>(
      berth(['promote', 'app', '--to', '1.0.0', '-n', teamA], viewer),
    )
    expect(denied.exitCode).toBe(4)
    expect(denied.stderr).toContain(`viewer-${g.namespace} is not allowed to promote ${teamA}/app; nothing changed`)
    expect((await env('app'))?.spec).toMatchObject({ version: '5.0.0' })
    expect((await berth(['promote', 'app', '--to', '1.0.0', '-n', teamA], sre)).stdout).toContain('5.0.0 → 1.0.0')
    expect((await env('app'))?.spec).toMatchObject({ version: '1.0.0' })

    // Neither may write status: a forged upstream history would otherwise open a promotion gate.
    const forged = { history: [{ version: '9.9.9', digest: `sha256:${'f'.repeat(64)}`, started: 'x', finished: 'x', result: 'Succeeded' }] }
    for (const kubeconfig of [viewer, sre]) {
      const person = new Kube(loadKubeConfig({ kubeconfig }))
      await expect(
        person.patchStatus({ apiVersion: 'berth.dev/v1alpha1', kind: 'Environment', metadata: { name: 'app', namespace: teamA } }, forged),
      ).rejects.toMatchObject({ code: 403 })
    }
    expect((await env('app'))?.status?.history?.some((h) => h.version === '9.9.9')).toBe(false)
  })
})

describe('berth install removes what an earlier install created and this one no longer renders', () => {
  it('moving from cluster-wide to lockdown deletes berth-apply; --dry-run lists it first', async () => {
    const ns = `${g.namespace}-inst`
    const run = (args: string[]): Promise<{ stdout: string }> =>
      execa(process.execPath, [
        join(ROOT, 'bin/berth.js'),
        'install',
        '--namespace',
        ns,
        '--apply',
        ...args,
        '--kubeconfig',
        g.ground.kubeconfig,
      ])
    await run([])
    const role = { apiVersion: `${rbac}/v1`, kind: 'ClusterRole', metadata: { name: `berth-apply-${ns}` } }
    expect(await g.kube().get(role)).toBeDefined()
    const dry = await run(['--default-service-account', 'deployer', '--dry-run'])
    expect(dry.stdout).toContain(`clusterrole/berth-apply-${ns} would be deleted: no longer installed`)
    expect(dry.stdout).toContain(`clusterrolebinding/berth-apply-${ns} would be deleted`)
    expect(await g.kube().get(role)).toBeDefined()
    const done = await run(['--default-service-account', 'deployer'])
    expect(done.stdout).toContain(`clusterrole/berth-apply-${ns} deleted: no longer installed`)
    expect(await g.kube().get(role)).toBeUndefined()
    // The other install (berth-system, deploy.test.ts) is another instance: untouched by design, never listed.
    expect(done.stdout).not.toMatch(/berth-apply\b(?!-)/)
  })
})
