/**
 * HTTPS_PROXY / HTTP_PROXY / NO_PROXY are honoured for the apiserver, the registry (oras) and
 * notification receivers, through a real proxy (Debian's tinyproxy) on loopback. Go, and berth
 * with it, never proxies loopback addresses, so the ground is reached by the machine's name
 * (127.0.0.1 in /etc/hosts; the apiserver's certificate is checked against `localhost` through
 * the kubeconfig's tls-server-name).
 */
import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { lookup } from 'node:dns/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { dump, load } from 'js-yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { post } from '../reconciler/outbound/http-post.ts'
import { configMap } from './support/config-repo.ts'
import { installCrd, publishApp } from './support/environments.ts'
import { eventually } from './support/eventually.ts'
import { failureOf, type ProcessFailure } from './support/failure.ts'
import { ROOT, useGround } from './support/ground.ts'
import { type Proxy, startProxy } from './support/proxy.ts'
import { type Receiver, startReceiver } from './support/receiver.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'
const run = promisify(execFile)
/** This machine's name, which resolves to 127.0.0.1 here (/etc/hosts): a loopback server by a name Go would proxy. */
const NAME = hostname()
/** A proxy address where nothing listens: a request that goes through it fails. */
const DEAD_PROXY = 'http://127.0.0.1:9'

describe('proxies, as kubectl and Go tools honour them', () => {
  let proxy: Proxy
  let kubeconfig = ''
  let apiserver = ''
  const berth = (args: string[], env: Record<string, string>): Promise<{ stdout: string; stderr: string }> =>
    run(process.execPath, [join(ROOT, 'bin/berth.js'), ...args], {
      env: { ...process.env, KUBECONFIG: kubeconfig, NO_PROXY: '', no_proxy: '', ...env },
    })

  beforeAll(async () => {
    const { address } = await lookup(NAME, 4)
    if (address !== '127.0.0.1') throw new Error(`this test needs the machine's name (${NAME}) to resolve to 127.0.0.1, not ${address}`)
    await installCrd(g.kube())
    proxy = await startProxy(g.scratch())
    const config = load(await readFile(g.ground.kubeconfig, 'utf8')) as {
      clusters: Array<{ cluster: Record<string, string> }>
    }
    for (const { cluster } of config.clusters) {
      const server = new URL(cluster.server ?? '')
      apiserver = `${NAME}:${server.port}`
      cluster.server = `https://${apiserver}`
      cluster['tls-server-name'] = 'localhost'
    }
    kubeconfig = join(g.scratch(), 'kubeconfig-by-name')
    await writeFile(kubeconfig, dump(config))
  })
  afterAll(async () => {
    await proxy.stop()
  })

  it('the apiserver: through HTTPS_PROXY (a CONNECT tunnel, TLS end to end), not when NO_PROXY names it', async () => {
    await berth(['status', '-n', g.namespace], { HTTPS_PROXY: proxy.url })
    // tinyproxy's log of the tunnel (it trails the request a little).
    await eventually(proxy.log, (log) => log.includes(`CONNECT ${apiserver} `), 10_000)

    // NO_PROXY naming the host: a direct connection, which works even when the proxy named is not there.
    await berth(['status', '-n', g.namespace], { HTTPS_PROXY: DEAD_PROXY, NO_PROXY: NAME })

    // A proxy that is not there fails the request: berth really goes through what HTTPS_PROXY names.
    const failed = await failureOf<ProcessFailure>(berth(['status', '-n', g.namespace], { HTTPS_PROXY: DEAD_PROXY }))
    expect(failed.stderr).toContain('proxy 127.0.0.1:9')
  })

  it('the registry: oras gets the environment and goes through HTTP_PROXY', async () => {
    const repository = `${g.ground.registries.plain.host}/${g.repository}/app`
    await publishApp(g.scratch(), repository, '1.0.0', { cm: configMap('settings', { v: '1' }) })
    await publishApp(g.scratch(), repository, '1.1.0', { cm: configMap('settings', { v: '2' }) })
    const byName = repository.replace(/^127\.0\.0\.1/, NAME)
    const args = ['diff', `oci://${byName}`, '1.0.0', '1.1.0', '--plain-http']
    const { stdout } = await berth(args, { HTTP_PROXY: proxy.url })
    expect(stdout).toContain('app: 1 changed, 0 added, 0 removed')
    await eventually(proxy.log, (log) => new RegExp(`GET http://${NAME}:\\d+/v2/`).test(log), 10_000)
    // Through a proxy that is not there, oras fails: it really used the environment berth gave it.
    const failed = await failureOf<ProcessFailure>(berth(args, { HTTP_PROXY: DEAD_PROXY }))
    expect(failed.stderr).toMatch(/proxy|connection refused/i)
  })

  it('notification receivers: through HTTP_PROXY unless NO_PROXY names them', async () => {
    const receiver: Receiver = await startReceiver()
    const saved = { HTTP_PROXY: process.env.HTTP_PROXY, NO_PROXY: process.env.NO_PROXY }
    try {
      const url = receiver.url.replace('127.0.0.1', NAME)
      const request = { url: `${url}/hook`, headers: { 'content-type': 'application/json' }, body: '{"event":"Ready"}' }
      process.env.HTTP_PROXY = proxy.url
      process.env.NO_PROXY = ''
      expect((await post(request, { timeoutMs: 10_000 })).status).toBe(200)
      await eventually(proxy.log, (log) => log.includes(`POST ${url}/hook`), 10_000)
      expect(receiver.received).toHaveLength(1)

      // Named in NO_PROXY: straight to the receiver, though the proxy named is not there.
      process.env.HTTP_PROXY = DEAD_PROXY
      process.env.NO_PROXY = NAME
      expect((await post(request, { timeoutMs: 10_000 })).status).toBe(200)
      expect(receiver.received).toHaveLength(2)
      process.env.NO_PROXY = ''
      await expect(post(request, { timeoutMs: 10_000 })).rejects.toThrow(/through the proxy 127\.0\.0\.1:9/)
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) Reflect.deleteProperty(process.env, key)
        else process.env[key] = value
      }
      await receiver.close()
    }
  })
})
