/**
 * Verified rollouts against real parts: the Deployment and ReplicaSet controllers with kwok's nodes run what berth
 * applies, a real Prometheus scrapes a real Pushgateway the tests push values to (test/ground/prometheus.ts), and a
 * CRD's objects carry conditions as their controller would write them. Passes run by hand with a clock the test moves
 * forward, so `for: 10m` takes no ten minutes; the last test runs the reconciler as a process.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Environment } from '../api/environment.ts'
import { AUTOMATIC_ROLLBACK } from '../reconciler/pass/phases.ts'
import { publish } from '../packager/publish.ts'
import { deployment, exampleRepo, statusCrd } from './support/config-repo.ts'
import { waitEstablished } from '../shared/crds.ts'
import { applyEnvironment, eventsOf, installCrd, ownNamespace, passes, publishApp, testClock } from './support/environments.ts'
import { eventually } from './support/eventually.ts'
import { ROOT, useGround } from './support/ground.ts'
import { type ReconcilerProcess, startReconciler } from './support/reconciler-process.ts'
import { pushMetrics, queryValue, startPrometheus } from './ground/prometheus.ts'
import { freePort, type Started, stopProcess } from './ground/processes.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'

const MINUTE = 60_000
type Deploy = { spec: { template: { spec: { containers: Array<{ image: string }> } } } }
const ready = (e: Environment): { status?: string; reason?: string; message?: string } | undefined =>
  e.status?.conditions?.find((c) => c.type === 'Ready')

const shop = (image: string): object =>
  deployment('shop', {
    replicas: 1,
    template: { metadata: { labels: { app: 'shop' } }, spec: { containers: [{ name: 'shop', image }] } },
  })

/** A Secret naming Prometheus at `host` as metric checks read it. */
const prometheusSecret = (name: string, host: string): object => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name },
  stringData: { address: `http://${host}` },
})

/**
 * Requests waiting unread at `port` on this machine: its listening process's connections (/proc/net/tcp) with bytes
 * in their receive queue. A frozen server reads nothing, so each is a request in flight.
 */
async function unreadRequestsAt(port: number): Promise<number> {
  const table = await readFile('/proc/net/tcp', 'utf8')
  const hex = port.toString(16).toUpperCase().padStart(4, '0')
  // Columns: sl local_address rem_address st tx_queue:rx_queue …; state 01 is ESTABLISHED.
  return table.split('\n').filter((line) => {
    const [, local, , state, queues] = line.trim().split(/\s+/)
    return local?.endsWith(`:${hex}`) && state === '01' && Number.parseInt(queues?.split(':')[1] ?? '0', 16) > 0
  }).length
}

describe('verified rollouts', () => {
  let repository = ''
  const clock = testClock()
  const { run, envRef } = passes(g, g.kube, clock.now)
  const pass = async (name: string): Promise<Environment> => (await run(name)).env
  const job = (name: string): string => `${g.namespace}-${name}`
  const push = (name: string, value: number): Promise<void> =>
    pushMetrics(g.ground.metrics.pushgateway, job(name), { shop_error_rate: value })
  /** Wait until Prometheus at `host` serves `value` for `name`'s series (scraped every second). */
  const scraped = (name: string, value: number, host = g.ground.metrics.prometheus): Promise<number | undefined> =>
    eventually(() => queryValue(host, `shop_error_rate{job="${job(name)}"}`).catch(() => undefined), (v) => v === value, 30_000, 250)
  const errorRate = (name: string, secret: string, extra: object = {}): object => ({
    name: 'error-rate',
    query: `shop_error_rate{job="${job(name)}"}`,
    condition: '< 0.01',
    for: '10m',
    interval: '30s',
    secretRef: { name: secret },
    ...extra,
  })
  const image = async (namespace: string): Promise<string | undefined> =>
    (await g.kube().get<Deploy>({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'shop', namespace } }))
      ?.spec.template.spec.containers[0]?.image
  /**
   * Environment `name` at 1.0.0 in a namespace of its own, gated by the error-rate check on the Prometheus of Secret
   * `secret` (at `host`), whose value is 0 and scraped before it is created.
   */
  const gatedEnvironment = async (
    name: string,
    options: { secret: string; host?: string; check?: object; spec?: object },
  ): Promise<string> => {
    const namespace = await ownNamespace(g, name)
    await push(name, 0)
    await scraped(name, 0, options.host)
    await applyEnvironment(g, name, repository, {
      version: '1.0.0',
      targetNamespace: namespace,
      timeout: '1h',
      health: { metrics: [errorRate(name, options.secret, options.check)] },
      ...options.spec,
    })
    return namespace
  }
  /** Pass until `ok`: the Deployment's controllers work in their own time. */
  const passUntil = (name: string, ok: (e: Environment) => boolean): Promise<Environment> =>
    eventually(() => pass(name), ok, 45_000, 200)

  beforeAll(async () => {
    await installCrd(g.kube())
    repository = `${g.ground.registries.plain.host}/${g.repository}/shop`
    await publishApp(g.scratch(), repository, '1.0.0', { shop: shop('example.com/shop:1.0') })
    await publishApp(g.scratch(), repository, '2.0.0', { shop: shop('example.com/shop:2.0') })
    await g.kube().apply({ ...prometheusSecret('prometheus', g.ground.metrics.prometheus), metadata: { name: 'prometheus', namespace: g.namespace } })
  })

  it('a good version is Ready only after `for`; one whose error rate turns bad after its pods are Ready fails MetricCheckFailed and rolls back', async () => {
    const namespace = await gatedEnvironment('gate', { secret: 'prometheus', spec: { rollback: 'onFailure' } })
    // Pods Ready by kstatus first; then the check holds, but not for long enough.
    const holding = await passUntil('gate', (e) => e.status?.metrics?.checks[0]?.result === 'Passing')
    expect(ready(holding)).toMatchObject({ status: 'False', reason: 'Progressing' })
    expect(ready(holding)?.message).toMatch(/^objects Ready; waiting for metric error-rate is 0 \(< 0.01\); must hold 10m more/)
    expect(holding.status?.metrics?.checks[0]).toMatchObject({ name: 'error-rate', value: '0', condition: '< 0.01' })
    clock.later(5 * MINUTE)
    expect(ready(await pass('gate'))?.reason).toBe('Progressing')
    clock.later(5 * MINUTE)
    const proven = await pass('gate')
    expect(ready(proven)).toMatchObject({ status: 'True', reason: 'Succeeded', message: 'applied 1.0.0; metrics held: error-rate' })
    expect(proven.status?.history?.at(-1)).toMatchObject({ version: '1.0.0', result: 'Succeeded', check: 'metrics error-rate' })
    const check = proven.status?.metrics?.checks[0]
    expect(Date.parse(check?.at ?? '') - Date.parse(check?.passingSince ?? '')).toBeGreaterThanOrEqual(10 * MINUTE)

    // 2.0.0: its pods come up Ready, its error rate holds a while, then turns bad.
    await g.kube().mergePatch(envRef('gate'), { spec: { version: '2.0.0' } })
    const rolling = await passUntil('gate', (e) => e.status?.metrics?.checks[0]?.result === 'Passing'
      && e.status.metrics.digest === e.status.lastAppliedDigest && e.status.lastAppliedVersion === '2.0.0')
    expect(await image(namespace)).toBe('example.com/shop:2.0')
    expect(ready(rolling)?.reason).toBe('Progressing')
    await push('gate', 0.5)
    await scraped('gate', 0.5)
    clock.later(MINUTE)
    const failed = await pass('gate')
    const query = `shop_error_rate{job="${job('gate')}"}`
    const why = `metric error-rate: ${query} is 0.5 for {job="${job('gate')}"}, which is not < 0.01`
    expect(failed.status?.history?.at(-2)).toMatchObject({ version: '2.0.0', result: 'MetricCheckFailed', check: 'metric error-rate' })
    expect(failed.status?.history?.at(-1)).toMatchObject({ version: '1.0.0', by: AUTOMATIC_ROLLBACK })
    expect(failed.status?.metrics?.checks[0]).toMatchObject({ result: 'Failed', value: '0.5' })
    expect((await eventsOf(g, 'gate', 'MetricCheckFailed')).map((e) => e.message)).toEqual([why])
    const rolling2 = (await eventsOf(g, 'gate', 'RollingBack'))[0]?.message
    expect(rolling2).toContain(`2.0.0 is unhealthy (${why}); berth rolls back on its own`)
    const back = await passUntil('gate', (e) => ready(e)?.reason === 'RolledBack')
    expect(ready(back)?.message).toContain('2.0.0 failed its health check and was rolled back; running 1.0.0')
    expect(await image(namespace)).toBe('example.com/shop:1.0')
  })

  describe('a Prometheus of the test\'s own, stopped and frozen', () => {
    let own: Started | undefined
    let host = ''
    const address = (): string => g.ground.metrics.prometheus.split(':')[0] ?? '127.0.0.1'
    const start = async (): Promise<void> => {
      own = await startPrometheus(g.ground.parts.prometheus, g.scratch(), 'prometheus-own', host, g.ground.metrics.pushgateway)
    }
    let reconciler: ReconcilerProcess | undefined

    beforeAll(async () => {
      host = `${address()}:${await freePort()}`
      await start()
      await g.kube().apply({ ...prometheusSecret('own', host), metadata: { name: 'own', namespace: g.namespace } })
    })
    afterAll(async () => {
      reconciler?.kill()
      if (own) {
        process.kill(-own.pid, 'SIGCONT')
        await stopProcess(own.pid)
      }
    })

    it('Prometheus stops during `for`: berth waits rather than fails, and is Ready once it is back, within the timeout', async () => {
      await gatedEnvironment('outage', { secret: 'own', host })
      await passUntil('outage', (e) => e.status?.metrics?.checks[0]?.result === 'Passing')
      await stopProcess(required(own).pid)
      clock.later(10 * MINUTE)
      const waiting = await pass('outage')
      expect(ready(waiting)).toMatchObject({ status: 'False', reason: 'Progressing' })
      expect(ready(waiting)?.message).toMatch(new RegExp(`waiting for metric error-rate: Prometheus at http://${host} did not answer`))
      expect(waiting.status?.metrics?.checks[0]).toMatchObject({ result: 'Waiting' })
      expect(waiting.status?.history?.at(-1)?.result).toBe('Progressing')

      await start()
      await scraped('outage', 0, host)
      clock.later(MINUTE)
      // Back: the check holds again, from now: what berth could not see is not counted as proof.
      const again = await pass('outage')
      expect(again.status?.metrics?.checks[0]).toMatchObject({ result: 'Passing', passingSince: again.status?.metrics?.checks[0]?.at })
      clock.later(10 * MINUTE)
      expect(ready(await pass('outage'))).toMatchObject({ status: 'True', reason: 'Succeeded' })
    })

    it('a pin changed while a check waits on a frozen Prometheus is applied at once: the wait is given up', async () => {
      const namespace = await gatedEnvironment('moving', { secret: 'own', host, check: { interval: '1s' } })
      reconciler = startReconciler(g.ground.kubeconfig, join(g.scratch(), 'cache-moving'), ['--namespace', g.namespace])
      const env = (): Promise<Environment> => g.kube().get<Environment>(envRef('moving')).then((e) => required(e))
      await eventually(env, (e) => e.status?.metrics?.checks[0]?.result === 'Passing', 45_000)
      // Frozen, not gone: connections are accepted and never answered, as from a Prometheus that hangs.
      process.kill(-required(own).pid, 'SIGSTOP')
      const port = Number(host.split(':')[1])
      await eventually(() => unreadRequestsAt(port), (n) => n > 0, 20_000)
      await g.kube().mergePatch(envRef('moving'), { spec: { version: '2.0.0' } })
      // A query waits up to 30 s for its answer; the new pin does not wait for it.
      const moved = await eventually(env, (e) => e.status?.lastAppliedVersion === '2.0.0', 15_000)
      expect(await image(namespace)).toBe('example.com/shop:2.0')
      const rows = moved.status?.history ?? []
      expect(rows.find((h) => h.version === '1.0.0')).toMatchObject({ result: 'Superseded' })
      process.kill(-required(own).pid, 'SIGCONT')
    })
  })

  it('a custom resource is judged by CEL rules, not kstatus: in progress, healthy, failed; a bad rule is refused', async () => {
    const group = `${g.namespace}.example.com`
    const crd = statusCrd(group, 'Widget')
    await g.kube().apply(crd)
    await waitEstablished(g.kube(), crd.metadata.name, 30_000)
    const widgets = `${g.ground.registries.plain.host}/${g.repository}/widgets`
    const widget = (size: number): object => ({ apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name: 'w' }, spec: { size } })
    await publishApp(g.scratch(), widgets, '1.0.0', { w: widget(1) })
    await publishApp(g.scratch(), widgets, '2.0.0', { w: widget(2) })
    const namespace = await ownNamespace(g, 'cel')
    const has = (type: string): string => `status.conditions.exists(c, c.type == '${type}' && c.status == 'True')`
    await applyEnvironment(g, 'cel', widgets, {
      version: '1.0.0',
      targetNamespace: namespace,
      timeout: '1h',
      health: { exprs: [{ apiVersion: `${group}/v1`, kind: 'Widget', inProgress: has('Building'), failed: has('Broken'), current: has('Serving') }] },
    })
    const setStatus = (status: object): Promise<string> =>
      g.kubectl(['patch', 'widget', 'w', '-n', namespace, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })])
    // No status yet: kstatus would call it Current (no Ready condition); the rules wait for it. (Right after a CRD is
    // Established the apiserver may still answer its kind's requests with 429 for a moment: berth retries those.)
    const fresh = await passUntil('cel', (e) => ready(e)?.reason !== 'TooManyRequests')
    expect(ready(fresh)).toMatchObject({ status: 'False', reason: 'Progressing' })
    expect(ready(fresh)?.message).toContain(`Widget ${namespace}/w: spec.health.exprs: current is not true yet`)
    await setStatus({ observedGeneration: 1, conditions: [{ type: 'Building', status: 'True' }] })
    expect(ready(await pass('cel'))?.message).toContain(`Widget ${namespace}/w: spec.health.exprs inProgress is true`)
    await setStatus({ observedGeneration: 1, conditions: [{ type: 'Building', status: 'False' }, { type: 'Serving', status: 'True' }] })
    expect(ready(await pass('cel'))).toMatchObject({ status: 'True', reason: 'Succeeded' })

    // 2.0.0 changes the spec: generation 2, which its controller has not observed, then reports Broken.
    await g.kube().mergePatch(envRef('cel'), { spec: { version: '2.0.0' } })
    expect(ready(await pass('cel'))?.message).toContain(`Widget ${namespace}/w: generation 2 not observed yet`)
    await setStatus({ observedGeneration: 2, conditions: [{ type: 'Broken', status: 'True' }, { type: 'Serving', status: 'True' }] })
    const broken = await pass('cel')
    expect(ready(broken)).toMatchObject({ status: 'False', reason: 'HealthCheckFailed' })
    expect(ready(broken)?.message).toBe(`2.0.0 is unhealthy: Widget ${namespace}/w: spec.health.exprs failed is true`)

    await applyEnvironment(g, 'cel-typo', widgets, {
      version: '1.0.0',
      targetNamespace: namespace,
      health: { exprs: [{ apiVersion: `${group}/v1`, kind: 'Widget', current: 'stauts.conditions.size() > 0' }] },
    })
    const refused = await pass('cel-typo')
    expect(ready(refused)).toMatchObject({ status: 'False', reason: 'InvalidSpec' })
    expect(ready(refused)?.message).toContain('spec.health.exprs.0.current: "stauts.conditions.size() > 0" names "stauts"')
    expect(refused.status?.inventory).toBeUndefined()
  })

  it('the example\'s platform Environment (its CRD) gates the apps through dependsOn; a cycle is refused', async () => {
    const example = `${g.ground.registries.plain.host}/${g.repository}/shop-config`
    await publish({
      input: await exampleRepo(join(g.scratch(), 'shop-config')),
      version: '1.0.0',
      repository: `oci://${example}`,
      access: { plainHttp: true },
      revision: `v1.0.0@sha1:${'0'.repeat(40)}`,
    })
    // The example's db-credentials Secret is SOPS-encrypted to the demo's age key.
    const agekey = await readFile(join(ROOT, 'examples', 'demo.agekey'), 'utf8')
    await g.kube().apply({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'sops-age', namespace: g.namespace },
      stringData: { 'demo.agekey': agekey },
    })
    const decryption = { provider: 'sops', secretRef: { name: 'sops-age' } }
    await applyEnvironment(g, 'dev', example, { version: '1.0.0', path: 'dev', dependsOn: [{ name: 'platform' }], decryption })
    const alone = await pass('dev')
    expect(ready(alone)).toMatchObject({ status: 'False', reason: 'DependencyNotReady' })
    expect(ready(alone)?.message).toBe(
      `dependsOn: ${g.namespace}/platform does not exist; nothing of the new version is applied until it is Ready; `
      + 'nothing of 1.0.0 was applied',
    )
    expect(alone.status?.inventory).toBeUndefined()
    await applyEnvironment(g, 'platform', example, { version: '1.0.0', path: 'platform' })
    expect(ready(await pass('dev'))?.message).toContain(`dependsOn: ${g.namespace}/platform is not Ready yet`)
    await passUntil('platform', (e) => ready(e)?.status === 'True')
    const applied = await pass('dev')
    expect(applied.status?.lastAppliedVersion).toBe('1.0.0')
    const flag = await g.kubectl(['get', 'featureflags.shop.example.com', 'new-checkout', '-n', 'shop-dev', '-o', 'jsonpath={.spec.enabled}'])
    expect(flag).toBe('true')

    await applyEnvironment(g, 'cycle-a', example, { version: '1.0.0', path: 'dev', dependsOn: [{ name: 'cycle-b' }] })
    await applyEnvironment(g, 'cycle-b', example, { version: '1.0.0', path: 'dev', dependsOn: [{ name: 'cycle-a' }] })
    const cycle = await pass('cycle-a')
    expect(ready(cycle)).toMatchObject({ status: 'False', reason: 'InvalidSpec' })
    expect(ready(cycle)?.message).toContain('spec.dependsOn: cycle-a → cycle-b → cycle-a is a cycle')
    expect(cycle.status?.conditions?.find((c) => c.type === 'Stalled')?.status).toBe('True')
  })
})

function required<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('not set up')
  return value
}
