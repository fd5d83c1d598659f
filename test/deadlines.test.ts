import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Kube, loadKubeConfig } from '../shared/kube.ts'
import { fetchManifest } from '../shared/oras.ts'
import { startRegistry } from './ground/ground.ts'
import { freePort, type Started, stopProcess, waitUntil } from './ground/processes.ts'
import { type SecondApiserver, startSecondApiserver } from './support/apiserver.ts'
import { useGround } from './support/ground.ts'

const g = useGround(import.meta.url)

/** A server that stops answering (SIGSTOP, the process frozen) holds a call only until its deadline. */
describe('every call has a deadline and can be cancelled', () => {
  let apiserver: SecondApiserver | undefined
  let registry: { started: Started; host: string } | undefined

  beforeAll(async () => {
    apiserver = await startSecondApiserver(g)
    registry = await startRegistry(g.ground.parts.registry, g.scratch(), 'registry-frozen', `127.0.0.1:${await freePort()}`)
    const host = registry.host
    await waitUntil(
      registry.started,
      async () => (await fetch(`http://${host}/v2/`).catch(() => undefined))?.ok ?? false,
      20_000,
    )
    process.kill(apiserver.pid, 'SIGSTOP')
    process.kill(registry.started.pid, 'SIGSTOP')
  })
  afterAll(async () => {
    await apiserver?.stop()
    if (registry) {
      process.kill(registry.started.pid, 'SIGCONT')
      await stopProcess(registry.started.pid, 2_000)
    }
  })

  const frozenKube = (timeoutMs: number): Kube =>
    new Kube(loadKubeConfig({ kubeconfig: apiserver?.kubeconfig ?? '' }), { timeoutMs })
  const ns = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }

  it('an apiserver request ends at its deadline with reason Timeout', async () => {
    const started = Date.now()
    await expect(frozenKube(800).get(ns)).rejects.toMatchObject({
      reason: 'Timeout',
      message: expect.stringContaining('no answer from the Kubernetes API within 0.8 s'),
    })
    expect(Date.now() - started).toBeLessThan(3_000)
  })

  it('close() cancels the requests in flight at once (shutdown)', async () => {
    const kube = frozenKube(60_000)
    const pending = kube.get(ns)
    const started = Date.now()
    setImmediate(() => kube.close())
    await expect(pending).rejects.toMatchObject({ reason: 'ShuttingDown' })
    expect(Date.now() - started).toBeLessThan(2_000)
    await expect(kube.get(ns)).rejects.toMatchObject({ reason: 'ShuttingDown' })
  })

  it('an oras run ends at its deadline (reason Timeout), and a cancel signal (shutdown) kills it', async () => {
    const reference = `${registry?.host ?? ''}/x/app:1.0.0`
    const started = Date.now()
    await expect(fetchManifest(reference, { plainHttp: true, timeoutMs: 800 })).rejects.toMatchObject({
      reason: 'Timeout',
      message: expect.stringContaining('no answer within 0.8 s'),
    })
    expect(Date.now() - started).toBeLessThan(3_000)
    const cancel = new AbortController()
    setImmediate(() => cancel.abort())
    await expect(fetchManifest(reference, { plainHttp: true, signal: cancel.signal })).rejects.toMatchObject({
      reason: 'ShuttingDown',
      message: expect.stringContaining('cancelled'),
    })
  })
})
