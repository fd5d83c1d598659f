import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Environment } from '../api/environment.ts'
import { configMap } from './support/config-repo.ts'
import { environment, installCrd, passes, publishApp } from './support/environments.ts'
import { failureOf, type ProcessFailure } from './support/failure.ts'
import { ROOT, useGround } from './support/ground.ts'
import { startReconciler } from './support/reconciler-process.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'
const run = promisify(execFile)

describe('the SRE commands, as kubectl berth, against a real reconciler', () => {
  let reconciler: ChildProcess | undefined
  let repository = ''
  const digests: Record<string, string> = {}
  const { envRef } = passes(g)
  const berth = async (args: string[]): Promise<string> =>
    (
      await run(process.execPath, [join(ROOT, 'bin/kubectl-berth.js'), ...args, '-n', g.namespace], {
        env: { ...process.env, KUBECONFIG: g.ground.kubeconfig },
      })
    ).stdout
  const get = async (name: string): Promise<Environment> =>
    (await g.kube().get<Environment>(envRef(name))) as Environment
  const cmValue = async (ns: string): Promise<string | undefined> =>
    (
      await g.kube().get<{ data: Record<string, string> }>({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'settings', namespace: ns },
      })
    )?.data.v

  beforeAll(async () => {
    await installCrd(g.kube())
    repository = `${g.ground.registries.plain.host}/${g.repository}/app`
    for (const v of ['1.0.0', '1.1.0', '1.2.0'])
      digests[v] = await publishApp(g.scratch(), repository, v, { cm: configMap('settings', { v }) })
    for (const env of ['staging', 'prod']) {
      await g.kube().apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `${g.namespace}-${env}` } })
      await g.kube().apply(
        environment(g.namespace, env, {
          source: { repository: `oci://${repository}`, plainHTTP: true },
          version: '1.0.0',
          targetNamespace: `${g.namespace}-${env}`,
          interval: '1h',
        }),
      )
    }
    reconciler = startReconciler(g.ground.kubeconfig, join(g.scratch(), 'cache'), ['-n', g.namespace]).child
    await run('kubectl', [
      '--kubeconfig',
      g.ground.kubeconfig,
      'wait',
      '--for=condition=Ready',
      'environment/staging',
      'environment/prod',
      '-n',
      g.namespace,
      '--timeout=30s',
    ])
  })
  afterAll(() => {
    reconciler?.kill('SIGTERM')
  })

  it('status shows every Environment at a glance, and as JSON for scripts', async () => {
    const out = await berth(['status'])
    expect(out).toMatch(
      /^NAMESPACE\s+NAME\s+PINNED\s+APPLIED\s+DIGEST\s+READY\s+SUSPENDED\s+FROZEN\s+VERIFIED\s+LAST CHANGE\s+MESSAGE\n/,
    )
    expect(out).toMatch(
      new RegExp(
        `${g.namespace}\\s+prod\\s+1\\.0\\.0\\s+1\\.0\\.0\\s+${(digests['1.0.0'] ?? '').slice(7, 19)}\\s+True\\s+no\\s+`,
      ),
    )
    const json = JSON.parse(await berth(['status', 'prod', '-o', 'json'])) as Record<string, unknown>
    expect(json).toMatchObject({
      name: 'prod',
      pinned: '1.0.0',
      applied: '1.0.0',
      digest: digests['1.0.0'],
      ready: 'True',
      suspended: false,
    })
  })

  it('status --watch prints again when something changes', async () => {
    const watcher = spawn(
      process.execPath,
      [join(ROOT, 'bin/kubectl-berth.js'), 'status', '--watch', '-n', g.namespace],
      { env: { ...process.env, KUBECONFIG: g.ground.kubeconfig }, stdio: ['ignore', 'pipe', 'ignore'] },
    )
    let out = ''
    watcher.stdout.setEncoding('utf8').on('data', (c: string) => (out += c))
    const until = async (check: () => boolean): Promise<void> => {
      for (let i = 0; i < 100 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    await until(() => out.includes('prod'))
    expect(out.match(/^NAMESPACE/gm)).toHaveLength(1)
    await g.kube().mergePatch(envRef('staging'), { metadata: { annotations: { touched: 'no-change-to-the-row' } } })
    await berth(['suspend', 'staging', '--reason', 'watch test'])
    await until(() => (out.match(/^NAMESPACE/gm) ?? []).length >= 2)
    watcher.kill('SIGINT')
    await berth(['resume', 'staging'])
    expect((out.match(/^NAMESPACE/gm) ?? []).length).toBeGreaterThanOrEqual(2)
    expect(out).toMatch(/staging\s+1\.0\.0\s+1\.0\.0\s+[a-f0-9]{12}\s+True\s+yes/)
  })

  it('promote --to --wait moves staging and exits 0 once Ready', async () => {
    const out = await berth(['promote', 'staging', '--to', '1.1.0', '--wait', '--timeout', '30s'])
    expect(out).toContain('staging: 1.0.0 → 1.1.0')
    expect(out).toContain('Ready on 1.1.0')
    expect(await cmValue(`${g.namespace}-staging`)).toBe('1.1.0')
  })

  it('promote --dry-run prints what would be created, changed (with fields) and pruned, and changes nothing', async () => {
    digests['1.1.1'] = await publishApp(g.scratch(), repository, '1.1.1', {
      cm: configMap('settings', { v: '1.1.1' }),
      extra: configMap('added', { a: '1' }),
    })
    const out = await berth(['promote', 'staging', '--to', '1.1.1', '--dry-run'])
    // The artifact-to-artifact diff comes first, then the server-side plan.
    const artifact = out.slice(0, out.indexOf('dry run: nothing changed'))
    expect(artifact).toContain('artifact diff 1.1.0 → 1.1.1, app: 1 changed, 1 added, 0 removed')
    expect(artifact).toContain('  + ConfigMap added')
    expect(artifact).toContain('-  v: "1.1.0"')
    expect(artifact).toContain('+  v: "1.1.1"')
    expect(out).toContain(`staging: 1.1.0 → 1.1.1 (${digests['1.1.1'] ?? ''}), dry run: nothing changed`)
    expect(out).toContain(`  + ConfigMap ${g.namespace}-staging/added`)
    expect(out).toContain(`  ~ ConfigMap ${g.namespace}-staging/settings: data.v`)
    expect(out).toContain('1 to create, 1 to change, 0 to prune')
    expect((await get('staging')).spec).toMatchObject({ version: '1.1.0' })
    expect(
      await g
        .kube()
        .get({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'added', namespace: `${g.namespace}-staging` } }),
    ).toBeUndefined()
    const back = await berth(['promote', 'staging', '--to', '1.0.0', '--dry-run'])
    expect(back).toContain('0 to create, 1 to change, 0 to prune')
  })

  it('promote --from copies the version and digest staging runs', async () => {
    await berth(['promote', 'prod', '--from', 'staging', '--wait', '--timeout', '30s'])
    const prod = await get('prod')
    expect(prod.spec).toMatchObject({ version: '1.1.0', digest: digests['1.1.0'] })
    expect(await cmValue(`${g.namespace}-prod`)).toBe('1.1.0')
  })

  it('promote to a version that does not exist is refused before anything changes', async () => {
    const failed = await failureOf<ProcessFailure>(
      berth(['promote', 'staging', '--to', '9.9.9', '--wait', '--timeout', '30s']),
    )
    expect(failed.code).toBe(1)
    expect(failed.stderr).toContain('version 9.9.9 is not published')
    expect(failed.stderr).toContain('nothing changed')
    expect((await get('staging')).spec).toMatchObject({ version: '1.1.0' })
    expect(await cmValue(`${g.namespace}-staging`)).toBe('1.1.0')
  })

  it('a pin that fails in the cluster makes promote --wait exit non-zero with the reason', async () => {
    // Set directly (not through promote, which refuses it): a range nothing satisfies. Staging stays not Ready for the
    // next tests.
    await g.kube().mergePatch(envRef('staging'), { spec: { version: '~7' } })
    const generation = (await get('staging')).metadata.generation ?? 0
    await run('kubectl', [
      '--kubeconfig',
      g.ground.kubeconfig,
      'wait',
      `--for=jsonpath={.status.observedGeneration}=${generation}`,
      'environment/staging',
      '-n',
      g.namespace,
      '--timeout=30s',
    ])
    expect((await get('staging')).status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'VersionNotFound',
    })
    expect(await cmValue(`${g.namespace}-staging`)).toBe('1.1.0')
  })

  it('promote --from pins what Succeeded upstream (the gate\'s rule), even while the upstream is not Ready now', async () => {
    // staging is pinned to ~7 and not Ready, but 1.1.0 Succeeded there: the in-cluster gate would let 1.1.0 through.
    await g.kube().mergePatch(envRef('prod'), { spec: { version: '1.0.0', digest: null } })
    const out = JSON.parse(await berth(['promote', 'prod', '--from', 'staging', '-o', 'json'])) as unknown
    expect(out).toMatchObject({ namespace: g.namespace, name: 'prod', to: '1.1.0', digest: digests['1.1.0'] })
    expect((await get('prod')).spec).toMatchObject({ version: '1.1.0', digest: digests['1.1.0'] })
  })

  it('promote --from an Environment on which nothing ever Succeeded is refused and changes nothing', async () => {
    await g.kube().apply(
      environment(g.namespace, 'fresh', {
        source: { repository: `oci://${repository}`, plainHTTP: true },
        version: '~7',
        targetNamespace: `${g.namespace}-staging`,
        suspend: true,
      }),
    )
    const failed = await failureOf<ProcessFailure>(berth(['promote', 'prod', '--from', 'fresh']))
    expect(failed.stderr).toContain(`no version has Succeeded on ${g.namespace}/fresh yet`)
    expect((await get('prod')).spec).toMatchObject({ version: '1.1.0' })
  })

  it('rollback re-pins the last version that was Ready before the current one', async () => {
    const out = await berth(['rollback', 'staging', '--wait', '--timeout', '30s'])
    expect(out).toContain('rolled back ~7 → 1.1.0')
    expect(readyVersion(await get('staging'))).toBe('1.1.0')
    const history = await berth(['history', 'staging'])
    expect(history).toMatch(
      /^VERSION\s+DIGEST\s+BY\s+STARTED\s+FINISHED\s+RESULT\n1\.0\.0 .*-\s.*Succeeded\n1\.1\.0\s+[a-f0-9]{12}\s+berth-admin\s.*Succeeded/,
    )
  })

  it('rollback with no earlier Ready version is refused', async () => {
    await g.kube().apply(
      environment(g.namespace, 'fresh', {
        source: { repository: `oci://${repository}`, plainHTTP: true },
        version: '1.0.0',
        targetNamespace: `${g.namespace}-staging`,
        suspend: true,
      }),
    )
    const failed = await failureOf<ProcessFailure>(berth(['rollback', 'fresh']))
    expect(failed.stderr).toContain('has no earlier Ready version in its history')
  })

  it('suspend blocks a promotion until resume, and status says who and why', async () => {
    await berth(['suspend', 'prod', '--reason', 'incident 42'])
    await berth(['promote', 'prod', '--to', '1.2.0'])
    await berth(['reconcile', 'prod', '--wait', '--timeout', '30s']).catch(() => undefined)
    const suspended = await get('prod')
    expect(suspended.status?.conditions?.find((c) => c.type === 'Suspended')?.message).toMatch(
      /suspended by berth-admin at .*: incident 42/,
    )
    expect(await cmValue(`${g.namespace}-prod`)).toBe('1.1.0')
    expect(JSON.parse(await berth(['status', 'prod', '-o', 'json']))).toMatchObject({
      suspended: true,
      suspendedReason: 'incident 42',
      suspendedBy: 'berth-admin',
    })
    const events = JSON.parse(
      await g.kubectl([
        'get',
        'events',
        '-n',
        g.namespace,
        '--field-selector',
        'involvedObject.name=prod',
        '-o',
        'json',
      ]),
    ) as { items: Array<{ reason: string; message: string }> }
    expect(events.items.find((e) => e.reason === 'Suspended')?.message).toMatch(
      /suspended by berth-admin at .*: incident 42/,
    )

    await berth(['resume', 'prod'])
    await run('kubectl', [
      '--kubeconfig',
      g.ground.kubeconfig,
      'wait',
      '--for=jsonpath={.status.lastAppliedVersion}=1.2.0',
      'environment/prod',
      '-n',
      g.namespace,
      '--timeout=30s',
    ])
    expect(await cmValue(`${g.namespace}-prod`)).toBe('1.2.0')
  })

  it('a promotion gate in the cluster refuses a version that was never Ready upstream, and lets it through once it was', async () => {
    await g.kube().mergePatch(envRef('prod'), { spec: { promotion: { from: 'staging' } } })
    digests['1.3.0'] = await publishApp(g.scratch(), repository, '1.3.0', { cm: configMap('settings', { v: '1.3.0' }) })
    const blocked = await failureOf<ProcessFailure>(
      berth(['promote', 'prod', '--to', '1.3.0', '--wait', '--timeout', '30s']),
    )
    expect(blocked.stderr).toContain('promotion gate: 1.3.0')
    expect(blocked.stderr).toContain('has not been Ready on staging')
    expect(await cmValue(`${g.namespace}-prod`)).toBe('1.2.0')

    await berth(['promote', 'staging', '--to', '1.3.0', '--wait', '--timeout', '30s'])
    // The blocked pass is retried with backoff and now finds 1.3.0 Ready upstream.
    await run('kubectl', [
      '--kubeconfig',
      g.ground.kubeconfig,
      'wait',
      '--for=jsonpath={.status.lastAppliedVersion}=1.3.0',
      'environment/prod',
      '-n',
      g.namespace,
      '--timeout=30s',
    ])
    expect(await cmValue(`${g.namespace}-prod`)).toBe('1.3.0')
  })

  it('reconcile --wait returns once the reconciler handled the request', async () => {
    const out = await berth(['reconcile', 'prod', '--wait', '--timeout', '30s'])
    expect(out).toContain('handled; Ready on 1.3.0')
  })

  it('-o json and -o yaml print the result for scripts; --wait\'s progress goes to stderr', async () => {
    const child = await run(
      process.execPath,
      [join(ROOT, 'bin/kubectl-berth.js'), 'reconcile', 'prod', '--wait', '--timeout', '30s', '-o', 'json', '-n', g.namespace],
      { env: { ...process.env, KUBECONFIG: g.ground.kubeconfig } },
    )
    expect(JSON.parse(child.stdout)).toMatchObject({ name: 'prod', ready: { version: '1.3.0', digest: digests['1.3.0'] } })
    expect(child.stderr).toMatch(new RegExp(`${g.namespace}/prod: `))
    const yaml = await berth(['history', 'prod', '-o', 'yaml'])
    expect(yaml).toMatch(/^- digest: sha256:[a-f0-9]{64}\n/)
    expect(yaml).toContain('  version: "1.0.0"\n')
  })

  it('--as and --as-group act as another user, as kubectl does; requests carry User-Agent berth/<version>', async () => {
    // As a user with no rights: the apiserver refuses, naming the impersonated user.
    const refused = await failureOf<ProcessFailure>(berth(['promote', 'prod', '--to', '1.2.0', '--as', 'mallory']))
    expect(refused.stderr).toContain('User "mallory" cannot get resource "environments"')
    // The same user with an admin group may, and history records the impersonated name.
    await berth(['promote', 'prod', '--to', '1.3.0', '--as', 'alice', '--as-group', 'system:masters'])
    const prod = await get('prod')
    expect(prod.metadata.annotations?.['berth.dev/promoted-by']).toBe('alice')
    // The apiserver names a field manager after the User-Agent's product: the CLI's update shows as "berth".
    const managers = (prod.metadata as { managedFields?: Array<{ manager: string; operation: string }> }).managedFields
    expect(managers).toContainEqual(expect.objectContaining({ manager: 'berth', operation: 'Update' }))
    // --as-group without --as is refused as kubectl refuses it.
    const lone = await failureOf<ProcessFailure>(berth(['status', '--as-group', 'system:masters']))
    expect(lone.stderr).toContain('impersonating groups needs a user too')
  })
})

function readyVersion(env: Environment): string | undefined {
  return env.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True'
    ? env.status.lastAppliedVersion
    : undefined
}
