import { type ChildProcess, execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Environment, environmentRef, RECONCILE_REQUESTED_AT } from '../api/environment.ts'
import { configMap } from './support/config-repo.ts'
import { environment, publishApp } from './support/environments.ts'
import { freePort } from './ground/processes.ts'
import { until } from './support/eventually.ts'
import { ROOT, useGround } from './support/ground.ts'
import { startReconciler } from './support/reconciler-process.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'
const run = promisify(execFile)

const deployment = (name: string): object => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name },
  spec: {
    replicas: 2,
    // Available only 2 s after ready: the rollout takes long enough to be seen in progress, however fast kwok is.
    minReadySeconds: 2,
    selector: { matchLabels: { app: name } },
    template: {
      metadata: { labels: { app: name } },
      spec: { containers: [{ name: 'app', image: 'example.com/app:1' }] },
    },
  },
})

describe('berth reconciler, a real process watching a real apiserver', () => {
  let reconciler: ChildProcess | undefined
  let logs = (): string => ''
  let repository = ''
  let metricsPort = 0
  const envRef = (name: string): ReturnType<typeof environmentRef> => environmentRef(g.namespace, name)
  const get = async (name: string): Promise<Environment | undefined> => await g.kube().get<Environment>(envRef(name))
  const berth = (args: string[]): Promise<{ stdout: string }> =>
    run(process.execPath, [join(ROOT, 'bin/berth.js'), ...args], {
      env: { ...process.env, KUBECONFIG: g.ground.kubeconfig },
    })

  beforeAll(async () => {
    expect((await berth(['install', '--crds-only', '--apply'])).stdout).toContain('Established')
    repository = `${g.ground.registries.plain.host}/${g.repository}/app`
    metricsPort = await freePort()
    await publishApp(g.scratch(), repository, '1.0.0', { cm: configMap('settings', { v: '1' }) })
    await publishApp(g.scratch(), repository, '1.1.0', { cm: configMap('settings', { v: '2' }) })
    await publishApp(g.scratch(), repository, '2.0.0', {
      cm: configMap('settings', { v: '3' }),
      web: deployment('web'),
    })
    const started = startReconciler(g.ground.kubeconfig, join(g.scratch(), 'cache'), [
      '--namespace',
      g.namespace,
      '--metrics-address',
      `127.0.0.1:${metricsPort}`,
    ])
    reconciler = started.child
    logs = started.logs
    await until(() => Promise.resolve(logs().includes('watching Environments')), 15_000)
  })
  afterAll(() => {
    reconciler?.kill('SIGKILL')
  })

  it('applies a new Environment, then follows a spec change within seconds', async () => {
    await g.kube().apply(
      environment(g.namespace, 'web', {
        source: { repository: `oci://${repository}`, plainHTTP: true },
        version: '1.0.0',
        interval: '1h',
      }),
    )
    await run('kubectl', [
      '--kubeconfig',
      g.ground.kubeconfig,
      'wait',
      '--for=condition=Ready',
      'environment/web',
      '-n',
      g.namespace,
      '--timeout=30s',
    ])
    expect((await get('web'))?.status?.lastAppliedVersion).toBe('1.0.0')

    await g.kube().mergePatch(envRef('web'), { spec: { version: '1.1.0' } })
    const took = await until(async () => (await get('web'))?.status?.lastAppliedVersion === '1.1.0', 10_000)
    expect(took).toBeLessThan(5_000)
    expect(
      (
        await g.kube().get<{ data: Record<string, string> }>({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'settings', namespace: g.namespace },
        })
      )?.data,
    ).toEqual({ v: '2' })
  })

  it('reconciles on demand when the request annotation changes, and says when it handled it', async () => {
    await g.kubectl([
      'patch',
      'configmap',
      'settings',
      '-n',
      g.namespace,
      '--type=merge',
      '-p',
      '{"data":{"v":"drifted"}}',
    ])
    const at = new Date().toISOString()
    await g.kube().mergePatch(envRef('web'), { metadata: { annotations: { [RECONCILE_REQUESTED_AT]: at } } })
    await until(async () => (await get('web'))?.status?.lastHandledReconcileAt === at, 10_000)
    expect(
      (
        await g.kube().get<{ data: Record<string, string> }>({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'settings', namespace: g.namespace },
        })
      )?.data,
    ).toEqual({ v: '2' })
  })

  it('is Ready only once the Deployment has rolled out, by the real controllers onto simulated nodes', async () => {
    await g.kube().mergePatch(envRef('web'), { spec: { version: '2.0.0' } })
    await until(async () => (await get('web'))?.status?.lastAppliedVersion === '2.0.0', 10_000)
    const progressing = (await get('web'))?.status?.conditions?.find((c) => c.type === 'Ready')
    expect(progressing).toMatchObject({
      status: 'False',
      reason: 'Progressing',
      message: expect.stringContaining(`Deployment ${g.namespace}/web`),
    })

    // The Deployment and ReplicaSet controllers roll it out onto kwok's simulated nodes: nothing is played by hand.
    await run('kubectl', [
      '--kubeconfig',
      g.ground.kubeconfig,
      'wait',
      '--for=condition=Ready',
      'environment/web',
      '-n',
      g.namespace,
      '--timeout=30s',
    ])
    const pods = await g.kubectl(['get', 'pods', '-n', g.namespace, '-o', 'jsonpath={.items[*].status.phase}'])
    expect(pods.split(' ').filter((p) => p === 'Running').length).toBeGreaterThanOrEqual(1)
  })

  it('serves probes and Prometheus metrics: duration, results by reason, ready, applied version', async () => {
    const base = `http://127.0.0.1:${metricsPort}`
    expect((await fetch(`${base}/healthz`)).status).toBe(200)
    expect((await fetch(`${base}/readyz`)).status).toBe(200)
    const text = await (await fetch(`${base}/metrics`)).text()
    const labels = `namespace="${g.namespace}",name="web"`
    expect(text).toContain(`berth_environment_ready{${labels}} 1`)
    expect(text).toMatch(
      new RegExp(`berth_environment_applied_info\\{${labels},version="2\\.0\\.0",digest="sha256:[a-f0-9]{64}"\\} 1`),
    )
    expect(text).not.toContain('version="1.0.0"')
    expect(text).toMatch(new RegExp(`berth_reconcile_results_total\\{${labels},reason="Progressing"\\} [1-9]`))
    expect(text).toMatch(new RegExp(`berth_reconcile_duration_seconds_count\\{${labels}\\} [1-9]`))
  })

  it('stops on SIGTERM with exit code 0', async () => {
    const exited = new Promise<number | null>((resolve) => reconciler?.once('exit', resolve))
    reconciler?.kill('SIGTERM')
    expect(await exited).toBe(0)
    expect(logs()).toContain('SIGTERM: finishing the pass in flight')

    // Structured logs: every line is JSON; an application names environment, version and digest.
    const lines = logs()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    for (const line of lines)
      expect(line).toMatchObject({
        level: expect.any(Number),
        time: expect.any(String),
        component: 'berth-reconciler',
        msg: expect.any(String),
      })
    expect(lines.find((l) => l.msg === 'applied' && l.version === '2.0.0')).toMatchObject({
      environment: `${g.namespace}/web`,
      digest: expect.stringMatching(/^sha256:/),
    })
  })
})
