import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Environment, environmentRef } from '../api/environment.ts'
import { Notifier, type NotifierOptions } from '../reconciler/notify/notifier.ts'
import { Metrics } from '../reconciler/controller/observability.ts'
import { reconcileEnvironment } from '../reconciler/pass/reconcile.ts'
import type { Log } from '../reconciler/pass/pass.ts'
import { configMap, unschedulable } from './support/config-repo.ts'
import { applyEnvironment, installCrd, ownNamespace, publishApp, testClock } from './support/environments.ts'
import { useGround } from './support/ground.ts'
import { until } from './support/eventually.ts'
import { startReconciler } from './support/reconciler-process.ts'
import { freePort } from './ground/processes.ts'
import { type Receiver, startReceiver } from './support/receiver.ts'
import { issueCert } from './ground/certs.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'

const NOW = new Date('2026-11-24T12:00:00.000Z')
const TOKEN = 'tok-3f9a8c7e-never-shown'
const REVISION = (version: string): string => `v${version}@sha1:${'0'.repeat(40)}`

describe('notifications (spec.notify)', () => {
  let repository = ''
  const digests: Record<string, string> = {}
  const receivers: Receiver[] = []
  const logs: Array<Record<string, unknown>> = []
  const log: Log = (fields) => logs.push(fields)

  /** A receiver on loopback, and the Secret that names it. */
  async function receiverSecret(
    name: string,
    path: string,
    tls?: { cert: string; key: string; ca?: string },
  ): Promise<Receiver> {
    const receiver = await startReceiver(tls)
    receivers.push(receiver)
    const data = { address: `${receiver.url}${path}`, token: TOKEN, ...(tls?.ca ? { 'ca.crt': tls.ca } : {}) }
    await g.kube().apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: g.namespace }, stringData: data })
    return receiver
  }

  /** One pass with a notifier of its own, then wait until that notifier has delivered or given up. */
  async function pass(
    name: string,
    options: Partial<NotifierOptions> & { now?: () => Date } = {},
  ): Promise<{ env: Environment; notifier: Notifier; ms: number }> {
    const { now = (): Date => NOW, ...rest } = options
    const notifier = new Notifier({ kube: g.kube(), log, attempts: 3, retryMs: 50, timeoutMs: 2000, ...rest })
    const started = Date.now()
    const ctx = { kube: g.kube(), cacheDir: join(g.scratch(), 'cache'), log, notifier, clusterName: 'ground', now }
    await reconcileEnvironment(ctx, { namespace: g.namespace, name })
    const ms = Date.now() - started
    const env = await g.kube().get<Environment>(environmentRef(g.namespace, name))
    if (!env) throw new Error(`${name} is gone`)
    return { env, notifier, ms }
  }

  async function delivered(
    name: string,
    options: Partial<NotifierOptions> & { now?: () => Date } = {},
  ): Promise<Environment> {
    const { env, notifier } = await pass(name, options)
    await notifier.idle()
    return env
  }

  const readyOf = (env: Environment): { reason: string; message: string } => {
    const ready = env.status?.conditions?.find((c) => c.type === 'Ready')
    if (!ready) throw new Error('no Ready condition')
    return { reason: ready.reason, message: ready.message }
  }

  // Each Environment in a namespace of its own unless the test says otherwise: one object, one owner.
  const environment = async (name: string, spec: Record<string, unknown>): Promise<void> => {
    await applyEnvironment(g, name, repository, { interval: '1h', targetNamespace: await ownNamespace(g, name), ...spec })
  }

  beforeAll(async () => {
    await installCrd(g.kube())
    repository = `${g.ground.registries.plain.host}/${g.repository}/app`
    digests['1.0.0'] = await publishApp(g.scratch(), repository, '1.0.0', { a: configMap('one', { v: '1' }) })
    digests['1.1.0'] = await publishApp(g.scratch(), repository, '1.1.0', { a: configMap('one', { v: '2' }) })
  })
  afterAll(async () => {
    await Promise.all(receivers.map((r) => r.close()))
  })

  it('webhook: the documented JSON for Applied and Ready, once per transition, with the token as a bearer', async () => {
    const hook = await receiverSecret('hook', '/hooks/berth')
    await environment('web', {
      version: '1.0.0',
      notify: [{ type: 'webhook', secretRef: { name: 'hook' } }],
    })
    await g.kube().mergePatch(environmentRef(g.namespace, 'web'), {
      metadata: { annotations: { 'berth.dev/promoted-by': 'alice' } },
    })
    const env = await delivered('web')
    const common = {
      environment: 'web',
      namespace: g.namespace,
      cluster: 'ground',
      version: '1.0.0',
      digest: digests['1.0.0'],
      revision: REVISION('1.0.0'),
      result: 'success',
      promotedBy: 'alice',
      time: NOW.toISOString(),
    }
    expect(hook.received.map((r) => r.body)).toStrictEqual([
      {
        event: 'Applied',
        ...common,
        reason: 'Applied',
        message: `applied 1.0.0 (${digests['1.0.0']}): 1 objects`,
      },
      { event: 'Ready', ...common, ...readyOf(env) },
    ])
    for (const r of hook.received) {
      expect(r).toMatchObject({ method: 'POST', path: '/hooks/berth' })
      expect(r.headers).toMatchObject({ 'authorization': `Bearer ${TOKEN}`, 'content-type': 'application/json' })
    }
    // Nothing changed: nothing to tell, however many passes.
    await delivered('web')
    await delivered('web')
    expect(hook.received).toHaveLength(2)

    // A promotion: Applied and Ready again, each naming the version before.
    await environment('web', { version: '1.1.0', notify: [{ type: 'webhook', secretRef: { name: 'hook' } }] })
    await delivered('web')
    expect(hook.received.slice(2).map((r) => r.body)).toMatchObject([
      { event: 'Applied', version: '1.1.0', previousVersion: '1.0.0' },
      { event: 'Ready', version: '1.1.0', previousVersion: '1.0.0' },
    ])
  })

  it('slack: an incoming-webhook message, only for the events asked for', async () => {
    const chat = await receiverSecret('chat', '/services/T000/B000/XXXXXXXX')
    await environment('chat', {
      version: '1.0.0',
      notify: [{ type: 'slack', secretRef: { name: 'chat' }, events: ['Ready', 'Failed'] }],
    })
    await delivered('chat')
    const short = (digests['1.0.0'] ?? '').slice(0, 'sha256:'.length + 12)
    const env = await g.kube().get<Environment>(environmentRef(g.namespace, 'chat'))
    const message = env ? readyOf(env).message : ''
    expect(chat.received.map((r) => r.body)).toStrictEqual([
      {
        text: `:white_check_mark: ${g.namespace}/chat (ground): 1.0.0 is Ready`,
        blocks: [
          {
            type: 'section',
            text: { type: 'mrkdwn', text: `*:white_check_mark: ${g.namespace}/chat (ground): 1.0.0 is Ready*` },
          },
          { type: 'section', text: { type: 'mrkdwn', text: message } },
          {
            type: 'context',
            elements: [{ type: 'mrkdwn', text: `\`${short}\` · revision ${REVISION('1.0.0')}` }],
          },
        ],
      },
    ])

    // Failed is asked for: a spec the reconciler refuses is told once, not on every pass.
    await environment('chat', {
      version: 'banana',
      notify: [{ type: 'slack', secretRef: { name: 'chat' }, events: ['Ready', 'Failed'] }],
    })
    await delivered('chat')
    await delivered('chat')
    expect(chat.received).toHaveLength(2)
    expect(chat.received[1]?.body).toMatchObject({ text: `:x: ${g.namespace}/chat (ground): 1.0.0 failed: InvalidSpec` })
  })

  it('github over HTTPS with the ground\'s CA: a deployment of the artifact\'s commit, then its statuses', async () => {
    const pki = g.scratch()
    const cert = await issueCert(g.ground.ca, pki, { name: 'github', commonName: 'github', usage: 'server' })
    const { readFile } = await import('node:fs/promises')
    const tls = {
      cert: await readFile(cert.cert, 'utf8'),
      key: await readFile(cert.key, 'utf8'),
      ca: await readFile(g.ground.ca.cert, 'utf8'),
    }
    const github = await receiverSecret('github', '/acme/shop-config', tls)
    github.respond('/api/v3/repos/acme/shop-config/deployments', { id: 42 })
    await environment('gh', { version: '1.0.0', notify: [{ type: 'github', secretRef: { name: 'github' } }] })
    await delivered('gh')
    const deployment = {
      ref: '0'.repeat(40),
      environment: `ground/${g.namespace}/gh`,
      description: `${g.namespace}/gh (ground): applied 1.0.0`,
      auto_merge: false,
      required_contexts: [],
      payload: { version: '1.0.0', digest: digests['1.0.0'] },
    }
    expect(github.received.map((r) => [r.path, r.body])).toStrictEqual([
      ['/api/v3/repos/acme/shop-config/deployments', deployment],
      [
        '/api/v3/repos/acme/shop-config/deployments/42/statuses',
        { state: 'in_progress', environment: `ground/${g.namespace}/gh`, description: deployment.description },
      ],
      // The same version's deployment: no second one, a status on it.
      [
        '/api/v3/repos/acme/shop-config/deployments/42/statuses',
        {
          state: 'success',
          environment: `ground/${g.namespace}/gh`,
          description: `${g.namespace}/gh (ground): 1.0.0 is Ready`,
        },
      ],
    ])
    expect(github.received[0]?.headers).toMatchObject({
      'authorization': `Bearer ${TOKEN}`,
      'accept': 'application/vnd.github+json',
      'x-github-api-version': '2022-11-28',
    })
  })

  it('a receiver that answers 500 twice, then 200, gets the message once; the metric counts it sent', async () => {
    const flaky = await receiverSecret('flaky', '/flaky')
    flaky.answer(500, 500)
    await environment('flaky', {
      version: '1.0.0',
      notify: [{ type: 'webhook', secretRef: { name: 'flaky' }, events: ['Ready'] }],
    })
    const metrics = new Metrics()
    await delivered('flaky', { count: (result) => metrics.notifications.inc({ result }) })
    expect(flaky.received.map((r) => (r.body as { event: string }).event)).toStrictEqual(['Ready', 'Ready', 'Ready'])
    const text = await metrics.registry.metrics()
    expect(text).toContain('berth_notifications_total{result="sent"} 1')
    expect(text).not.toContain('result="failed"')
  })

  it('a receiver that never answers does not hold the pass; it is given up, counted and told as an Event', async () => {
    const silent = await receiverSecret('silent', '/silent')
    silent.hang()
    await environment('silent', { version: '1.0.0', notify: [{ type: 'webhook', secretRef: { name: 'silent' } }] })
    const metrics = new Metrics()
    const count: NotifierOptions['count'] = (result) => metrics.notifications.inc({ result })
    const { notifier, ms } = await pass('silent', { count, timeoutMs: 400, attempts: 2, retryMs: 50 })
    // The pass ended without waiting for the receiver (2 × 2 tries × 400 ms would be 1.6 s at least).
    expect(ms).toBeLessThan(1500)
    const waited = Date.now()
    await notifier.idle()
    // Bounded: tries × deadline + delays, for the two notifications in order.
    expect(Date.now() - waited).toBeLessThan(5000)
    expect(await metrics.registry.metrics()).toContain('berth_notifications_total{result="failed"} 2')
    const events = await g.kube().list<{ reason: string; message: string; involvedObject: { name: string } }>(
      'v1',
      'Event',
      { namespace: g.namespace },
    )
    const failed = events.filter((e) => e.reason === 'NotificationFailed' && e.involvedObject.name === 'silent')
    expect(failed.map((e) => e.message).sort()).toStrictEqual([
      `could not tell receiver 1 (webhook, Secret ${g.namespace}/silent) of Applied: no answer within 0.4 s (after 2 tries)`,
      `could not tell receiver 1 (webhook, Secret ${g.namespace}/silent) of Ready: no answer within 0.4 s (after 2 tries)`,
    ])
  })

  it('a refused request is not tried again, and neither the token nor the address shows in logs, Events or status', async () => {
    const refusing = await receiverSecret('refusing', '/services/T111/B222/s3cretpath')
    refusing.answer(401, 401, 401)
    await environment('refused', {
      version: '1.0.0',
      notify: [{ type: 'slack', secretRef: { name: 'refusing' }, events: ['Applied'] }],
    })
    const env = await delivered('refused')
    expect(refusing.received).toHaveLength(1)
    const events = await g.kube().list<{ reason: string; message: string; involvedObject: { name: string } }>(
      'v1',
      'Event',
      { namespace: g.namespace },
    )
    const mine = events.filter((e) => e.involvedObject.name === 'refused')
    expect(mine.find((e) => e.reason === 'NotificationFailed')?.message).toBe(
      `could not tell receiver 1 (slack, Secret ${g.namespace}/refusing) of Applied: the receiver answered HTTP 401`,
    )
    const everything = JSON.stringify([logs, events, env.status])
    expect(everything).toContain('NotificationFailed')
    for (const secret of [TOKEN, 's3cretpath', 'T000/B000', refusing.url]) expect(everything).not.toContain(secret)
  })

  it('Suspended, Resumed and DriftCorrected are told as they happen', async () => {
    const ops = await receiverSecret('ops', '/ops')
    const notify = [{ type: 'webhook', secretRef: { name: 'ops' }, events: ['Suspended', 'Resumed', 'DriftCorrected'] }]
    await environment('ops', { version: '1.0.0', notify })
    await delivered('ops')
    await environment('ops', { version: '1.0.0', notify, suspend: true })
    await delivered('ops')
    await delivered('ops')
    await environment('ops', { version: '1.0.0', notify, suspend: false })
    await delivered('ops')
    await g.kube().mergePatch(
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'one', namespace: `${g.namespace}-ops` } },
      { data: { v: 'edited' } },
    )
    await delivered('ops')
    expect(ops.received.map((r) => r.body)).toMatchObject([
      { event: 'Suspended', result: 'info', version: '1.0.0' },
      { event: 'Resumed', result: 'info', version: '1.0.0' },
      { event: 'DriftCorrected', result: 'success', version: '1.0.0' },
    ])
  })

  it('a version that fails health is told as Failed once; with rollback onFailure, as RolledBack', async () => {
    const broken = unschedulable('never')
    const sickRepository = `${g.ground.registries.plain.host}/${g.repository}/sick`
    await publishApp(g.scratch(), sickRepository, '1.0.0', { cm: configMap('sick', { v: '1' }) })
    await publishApp(g.scratch(), sickRepository, '2.0.0', { cm: configMap('sick', { v: '2' }), web: broken })
    const health = await receiverSecret('health', '/health')
    const notify = [{ type: 'webhook', secretRef: { name: 'health' } }]
    // The 1 s health timeout passes on this clock: moved forward, not slept through.
    const clock = testClock()
    const realTime = { now: clock.now }
    const create = async (name: string, spec: Record<string, unknown>): Promise<void> => {
      const targetNamespace = await ownNamespace(g, name)
      await applyEnvironment(g, name, sickRepository, { interval: '1h', timeout: '1s', notify, targetNamespace, ...spec })
    }
    const told = (name: string): unknown[] =>
      health.received.map((r) => r.body).filter((b) => (b as { environment: string }).environment === name)

    await create('sick', { version: '2.0.0' })
    await delivered('sick', realTime)
    clock.later(1_200)
    await delivered('sick', realTime)
    await delivered('sick', realTime)
    expect(told('sick')).toMatchObject([
      { event: 'Applied', version: '2.0.0', result: 'success' },
      { event: 'Failed', version: '2.0.0', result: 'failure', reason: 'HealthCheckFailed' },
    ])
    expect(told('sick')).toHaveLength(2)

    await create('roll', { version: '1.0.0', rollback: 'onFailure' })
    await delivered('roll', realTime)
    await create('roll', { version: '2.0.0', rollback: 'onFailure' })
    await delivered('roll', realTime)
    clock.later(1_200)
    await delivered('roll', realTime)
    await delivered('roll', realTime)
    expect(told('roll')).toMatchObject([
      { event: 'Applied', version: '1.0.0' },
      { event: 'Ready', version: '1.0.0' },
      { event: 'Applied', version: '2.0.0', previousVersion: '1.0.0' },
      {
        event: 'RolledBack',
        version: '1.0.0',
        previousVersion: '2.0.0',
        result: 'failure',
        reason: 'RolledBack',
        message: expect.stringContaining('2.0.0 is unhealthy'),
      },
    ])
    expect(told('roll')).toHaveLength(4)
  })

  it('the reconciler process: --cluster-name in every notification, the metric on /metrics', async () => {
    const e2e = await receiverSecret('e2e', '/e2e')
    const port = await freePort()
    const reconciler = startReconciler(g.ground.kubeconfig, join(g.scratch(), 'cache-e2e'), [
      '--namespace',
      g.namespace,
      '--cluster-name',
      'eu-1',
      '--metrics-address',
      `127.0.0.1:${port}`,
    ])
    try {
      await until(() => Promise.resolve(reconciler.logs().includes('watching Environments')), 15_000)
      await environment('e2e', { version: '1.0.0', notify: [{ type: 'webhook', secretRef: { name: 'e2e' } }] })
      await until(() => Promise.resolve(e2e.received.length >= 2), 15_000)
      expect(e2e.received.map((r) => r.body)).toMatchObject([
        { event: 'Applied', environment: 'e2e', cluster: 'eu-1', version: '1.0.0' },
        { event: 'Ready', environment: 'e2e', cluster: 'eu-1', version: '1.0.0' },
      ])
      // Counted once the receiver's answer is in. Other Environments of this file share ConfigMap "one", so the
      // process may correct (and tell) their drift too: the metric counts exactly what the process logs as sent.
      const metrics = (): Promise<string> => fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text())
      const sentOf = (text: string): number =>
        Number(/berth_notifications_total\{result="sent"\} (\d+)/.exec(text)?.[1] ?? 0)
      await until(async () => {
        const logged = reconciler.logs().split('\n').filter((l) => l.includes('"notification sent"')).length
        return logged >= 2 && sentOf(await metrics()) === logged
      }, 5000)
      expect(reconciler.logs()).not.toContain(TOKEN)
    } finally {
      reconciler.kill()
    }
  })

  it('the receiver\'s Secret is read as the Environment\'s ServiceAccount: without the right, nothing is sent', async () => {
    const rbac = 'rbac.authorization.k8s.io'
    const tenantHook = await receiverSecret('tenant-hook', '/tenant')
    await g.kube().apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'teller', namespace: g.namespace } })
    const role = (rules: object[]): Promise<unknown> =>
      g.kube().apply({ apiVersion: `${rbac}/v1`, kind: 'Role', metadata: { name: 'teller', namespace: g.namespace }, rules })
    const configMaps = { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'patch'] }
    await role([configMaps])
    await g.kube().apply({
      apiVersion: `${rbac}/v1`,
      kind: 'RoleBinding',
      metadata: { name: 'teller', namespace: g.namespace },
      roleRef: { apiGroup: rbac, kind: 'Role', name: 'teller' },
      subjects: [{ kind: 'ServiceAccount', name: 'teller', namespace: g.namespace }],
    })
    const notify = [{ type: 'webhook', secretRef: { name: 'tenant-hook' }, events: ['Applied'] }]
    // Its objects in its own namespace, where the Role lets its ServiceAccount apply them.
    await environment('tenant', { version: '1.0.0', serviceAccountName: 'teller', notify, targetNamespace: g.namespace })
    await delivered('tenant')
    expect(tenantHook.received).toHaveLength(0)
    const events = await g.kube().list<{ reason: string; message: string; involvedObject: { name: string } }>(
      'v1',
      'Event',
      { namespace: g.namespace },
    )
    const failed = events.find((e) => e.reason === 'NotificationFailed' && e.involvedObject.name === 'tenant')
    expect(failed?.message).toMatch(/forbidden.*system:serviceaccount:.*:teller/)

    // Allowed to read that one Secret: the next transition is told.
    await role([configMaps, { apiGroups: [''], resources: ['secrets'], resourceNames: ['tenant-hook'], verbs: ['get'] }])
    await environment('tenant', { version: '1.1.0', serviceAccountName: 'teller', notify, targetNamespace: g.namespace })
    await delivered('tenant')
    expect(tenantHook.received.map((r) => r.body)).toMatchObject([{ event: 'Applied', version: '1.1.0' }])
  })

  it('receivers cannot be pointed inward: a name resolving to cloud metadata is refused, nothing sent, an Event says so', async () => {
    const inner = await receiverSecret('inner', '/x')
    const port = new URL(inner.url).port
    // The Secret names hosts by name; the resolver (injected, as DNS would answer) decides where they lead.
    const names: Record<string, string> = { 'metadata.example': '169.254.169.254', 'hooks.example': '127.0.0.1' }
    const resolve = (host: string): Promise<Array<{ address: string; family: number }>> =>
      Promise.resolve(names[host] ? [{ address: names[host], family: 4 }] : [])
    const secret = (name: string, host: string): Promise<unknown> =>
      g.kube().apply({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name, namespace: g.namespace },
        stringData: { address: `http://${host}:${port}/x`, token: TOKEN },
      })
    await secret('to-metadata', 'metadata.example')
    await secret('by-name', 'hooks.example')
    await environment('inward', {
      version: '1.0.0',
      notify: [
        { type: 'webhook', secretRef: { name: 'to-metadata' }, events: ['Ready'] },
        { type: 'webhook', secretRef: { name: 'by-name' }, events: ['Ready'] },
      ],
    })
    await delivered('inward', { resolve })
    // The good name reached the receiver through the address checked; the bad one sent nothing.
    expect(inner.received.map((r) => (r.body as { event: string }).event)).toEqual(['Ready'])
    const events = await g.kube().list<{ reason: string; message: string; involvedObject: { name: string } }>(
      'v1',
      'Event',
      { namespace: g.namespace },
    )
    const failed = events.filter((e) => e.involvedObject.name === 'inward' && e.reason === 'NotificationFailed')
    expect(failed).toHaveLength(1)
    expect(failed[0]?.message).toContain('resolves to 169.254.169.254, which is in a denied range')
    expect(failed[0]?.message).not.toContain(TOKEN)

    // --deny-receiver-cidr: the operator's ranges too (here loopback, where this receiver is).
    await environment('inward', {
      version: '1.1.0',
      notify: [{ type: 'webhook', secretRef: { name: 'by-name' }, events: ['Ready'] }],
    })
    await delivered('inward', { resolve, denyCidrs: ['127.0.0.0/8'] })
    expect(inner.received).toHaveLength(1)
  })

  it('a redirect is never followed, and an answer is read only up to a bound', async () => {
    const { createServer } = await import('node:http')
    let redirected = 0
    let followed = 0
    const server = createServer((req, res) => {
      if (req.url === '/redirect') {
        redirected++
        res.writeHead(302, { location: '/followed' }).end()
      } else if (req.url === '/followed') {
        followed++
        res.end('{}')
      } else {
        // An endless answer: berth must stop reading, not fill its memory.
        res.writeHead(200)
        const chunk = Buffer.alloc(64 * 1024, 120)
        const more = (): void => {
          while (res.write(chunk));
          res.once('drain', more)
        }
        more()
      }
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    try {
      const { post } = await import('../reconciler/outbound/http-post.ts')
      const redirect = await post({ url: `http://127.0.0.1:${port}/redirect`, headers: {}, body: '{}' }, { timeoutMs: 5000 })
      expect(redirect.status).toBe(302)
      expect([redirected, followed]).toEqual([1, 0])
      const endless = await post({ url: `http://127.0.0.1:${port}/endless`, headers: {}, body: '{}' }, { timeoutMs: 5000 })
      expect(endless.status).toBe(200)
      expect(endless.body.length).toBeLessThanOrEqual(128 * 1024)
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })

  it('closing the notifier (shutdown) cuts the wait between tries short: what is queued gets one more try', async () => {
    const closing = await receiverSecret('closing', '/closing')
    closing.answer(500)
    await environment('closing', {
      version: '1.0.0',
      notify: [{ type: 'webhook', secretRef: { name: 'closing' }, events: ['Ready'] }],
    })
    // A minute between tries: only close() can make the second one come soon.
    const { notifier } = await pass('closing', { retryMs: 60_000 })
    await until(() => Promise.resolve(closing.received.length === 1), 5000)
    notifier.close()
    const closed = Date.now()
    await notifier.idle()
    expect(Date.now() - closed).toBeLessThan(3000)
    expect(closing.received.map((r) => (r.body as { event: string }).event)).toStrictEqual(['Ready', 'Ready'])
  })
})
