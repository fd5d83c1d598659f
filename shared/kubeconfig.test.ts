import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import type { RequestOptions } from 'node:https'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { dump } from 'js-yaml'
import { inCluster, loadKubeConfig } from './kubeconfig.ts'

const kubeconfig = (parts: {
  current?: string
  clusters?: Array<[string, Record<string, unknown>]>
  users?: Array<[string, Record<string, unknown>]>
  contexts?: Array<[string, Record<string, unknown>]>
}): string =>
  dump({
    apiVersion: 'v1',
    kind: 'Config',
    ...(parts.current ? { 'current-context': parts.current } : {}),
    clusters: (parts.clusters ?? []).map(([name, cluster]) => ({ name, cluster })),
    users: (parts.users ?? []).map(([name, user]) => ({ name, user })),
    contexts: (parts.contexts ?? []).map(([name, context]) => ({ name, context })),
  })

async function authorized(access: ReturnType<typeof loadKubeConfig>): Promise<RequestOptions> {
  const options: RequestOptions = { headers: { Accept: 'application/json' } }
  await access.authorize(options)
  return options
}

describe('loadKubeConfig', () => {
  let dir = ''
  const saved = process.env.KUBECONFIG
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-kubeconfig-'))
  })
  afterEach(async () => {
    if (saved === undefined) delete process.env.KUBECONFIG
    else process.env.KUBECONFIG = saved
    await rm(dir, { recursive: true, force: true })
  })

  it('reads the current context: server, namespace, CA and client certificate from data or files (relative to the file)', async () => {
    await writeFile(join(dir, 'client.crt'), 'CERT')
    const file = join(dir, 'config')
    await writeFile(
      file,
      kubeconfig({
        current: 'dev',
        clusters: [
          [
            'c',
            { 'server': 'https://127.0.0.1:6443', 'certificate-authority-data': Buffer.from('CA').toString('base64') },
          ],
        ],
        users: [
          ['u', { 'client-certificate': 'client.crt', 'client-key-data': Buffer.from('KEY').toString('base64') }],
        ],
        contexts: [['dev', { cluster: 'c', user: 'u', namespace: 'team-a' }]],
      }),
    )
    const access = loadKubeConfig({ kubeconfig: file })
    expect(access.server).toBe('https://127.0.0.1:6443')
    expect(access.namespace).toBe('team-a')
    const options = await authorized(access)
    expect(String(options.ca)).toBe('CA')
    expect(String(options.cert)).toBe('CERT')
    expect(options.key).toEqual(Buffer.from('KEY'))
    expect(options.headers).toEqual({ Accept: 'application/json' })
  })

  it('sends a token, a token file or basic auth; --context picks another context', async () => {
    const tokenFile = join(dir, 'token')
    await writeFile(tokenFile, 'from-file\n')
    const file = join(dir, 'config')
    await writeFile(
      file,
      kubeconfig({
        current: 'a',
        clusters: [['c', { 'server': 'https://k:6443', 'insecure-skip-tls-verify': true }]],
        users: [
          ['t', { token: 'inline' }],
          ['f', { tokenFile }],
          ['b', { username: 'admin', password: 'secret' }],
        ],
        contexts: [
          ['a', { cluster: 'c', user: 't' }],
          ['b', { cluster: 'c', user: 'f' }],
          ['c', { cluster: 'c', user: 'b' }],
        ],
      }),
    )
    const a = await authorized(loadKubeConfig({ kubeconfig: file }))
    expect(a.headers).toMatchObject({ Authorization: 'Bearer inline' })
    expect(a.rejectUnauthorized).toBe(false)
    expect((await authorized(loadKubeConfig({ kubeconfig: file, context: 'b' }))).headers).toMatchObject({
      Authorization: 'Bearer from-file',
    })
    expect((await authorized(loadKubeConfig({ kubeconfig: file, context: 'c' }))).headers).toMatchObject({
      Authorization: `Basic ${Buffer.from('admin:secret').toString('base64')}`,
    })
    expect(() => loadKubeConfig({ kubeconfig: file, context: 'nope' })).toThrow(
      /context "nope" is not in the kubeconfig/,
    )
  })

  it('merges $KUBECONFIG as kubectl does: the first file to name a thing, or the current context, wins', async () => {
    const first = join(dir, 'one')
    const second = join(dir, 'two')
    await writeFile(
      first,
      kubeconfig({
        clusters: [['c', { server: 'https://first:6443' }]],
        users: [['u', { token: 'first' }]],
      }),
    )
    await writeFile(
      second,
      kubeconfig({
        current: 'ctx',
        clusters: [['c', { server: 'https://second:6443' }]],
        users: [['u', { token: 'second' }]],
        contexts: [['ctx', { cluster: 'c', user: 'u' }]],
      }),
    )
    process.env.KUBECONFIG = [first, second].join(delimiter)
    const access = loadKubeConfig()
    expect(access.server).toBe('https://first:6443')
    expect((await authorized(access)).headers).toMatchObject({ Authorization: 'Bearer first' })
  })

  it('says so when no cluster is configured', async () => {
    const file = join(dir, 'config')
    await writeFile(file, kubeconfig({ current: 'x' }))
    expect(() => loadKubeConfig({ kubeconfig: file })).toThrow(/no Kubernetes cluster configured/)
  })

  it('in a pod: the service host and port, the mounted CA, namespace and token', async () => {
    await writeFile(join(dir, 'ca.crt'), 'POD-CA')
    await writeFile(join(dir, 'token'), 'pod-token')
    await writeFile(join(dir, 'namespace'), 'berth-system\n')
    const access = inCluster(dir, { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' })
    expect(access.server).toBe('https://[fd00::1]:443')
    expect(access.namespace).toBe('berth-system')
    const options = await authorized(access)
    expect(String(options.ca)).toBe('POD-CA')
    expect(options.headers).toMatchObject({ Authorization: 'Bearer pod-token' })
  })
})
