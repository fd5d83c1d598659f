import { randomBytes } from 'node:crypto'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { writeYaml } from '../shared/yaml-writer.ts'
import { beforeAll, describe, expect, it } from 'vitest'
import type { Environment } from '../api/environment.ts'
import { resolve } from '../reconciler/source/resolve.ts'
import { configMap } from './support/config-repo.ts'
import { applyEnvironment, installCrd, passes, publishApp } from './support/environments.ts'
import { useGround } from './support/ground.ts'
import { pushRaw, tarGz } from './support/raw-artifacts.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'

type Event = { reason: string; type: string; message: string; involvedObject: { name: string } }

/** Bytes that are not what their digest names: served by the real registry, refused before anything is applied. */
describe('integrity of what is fetched', () => {
  let repository = ''
  const { envRef, run, ready } = passes(g)
  const cm = (name: string): Promise<{ data?: Record<string, string> } | undefined> =>
    g.kube().get({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: g.namespace } })
  const pin = (version: string): Promise<unknown> => g.kube().mergePatch(envRef('app'), { spec: { version } })
  // Content no other test publishes: the registry stores blobs by digest across repositories.
  const unique = (): string => randomBytes(8).toString('hex')
  const layerOf = async (version: string): Promise<string> => {
    const resolved = await resolve(repository, version, undefined, { plainHttp: true })
    return ((resolved.manifest.layers as Array<{ digest: string }>)[0]?.digest ?? '').slice('sha256:'.length)
  }
  /** Flip one byte of a blob where the registry keeps it on disk: it then serves other bytes under the same digest. */
  const corruptInRegistry = async (hex: string): Promise<void> => {
    const file = join(
      g.ground.dir,
      'registry-plain',
      'data',
      'docker',
      'registry',
      'v2',
      'blobs',
      'sha256',
      hex.slice(0, 2),
      hex,
      'data',
    )
    const bytes = await readFile(file)
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0xff
    await writeFile(file, bytes)
  }

  beforeAll(async () => {
    await installCrd(g.kube())
    repository = `${g.ground.registries.plain.host}/${g.repository}/app`
    await publishApp(g.scratch(), repository, '1.0.0', { a: configMap('kept', { v: '1', n: unique() }) })
    await applyEnvironment(g, 'app', repository, { version: '1.0.0' })
    expect(ready((await run('app')).env)).toMatchObject({ status: 'True' })
  })

  it('a layer whose bytes do not match its digest: DigestMismatch, a Warning Event, nothing applied, retried with backoff', async () => {
    await publishApp(g.scratch(), repository, '2.0.0', { a: configMap('kept', { v: '2', n: unique() }) })
    await corruptInRegistry(await layerOf('2.0.0'))
    await pin('2.0.0')
    const { env, outcome } = await run('app')
    expect(ready(env)).toMatchObject({
      status: 'False',
      reason: 'DigestMismatch',
      message: expect.stringMatching(/digest mismatch .*; nothing of 2\.0\.0 was applied; still running 1\.0\.0$/),
    })
    // The registry may be repaired: this is retried, with backoff.
    expect(outcome).toMatchObject({ next: 'backoff' })
    expect((await cm('kept'))?.data?.v).toBe('1')
    const events = await g.kube().list<Event>('v1', 'Event', { namespace: g.namespace })
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'Warning',
        reason: 'DigestMismatch',
        involvedObject: expect.objectContaining({ name: 'app' }),
      }),
    )
  })

  it('a cached layer that fails its check is dropped and fetched again, once', async () => {
    await publishApp(g.scratch(), repository, '3.0.0', { a: configMap('kept', { v: '3', n: unique() }) })
    await pin('3.0.0')
    expect(ready((await run('app')).env)).toMatchObject({ status: 'True', message: 'applied 3.0.0' })
    const hex = await layerOf('3.0.0')
    const cached = join(g.scratch(), 'cache', 'blobs', 'sha256', hex)
    await writeFile(cached, 'not the layer')
    // A drift, so the next pass reads the artifact again.
    await g.kubectl(['patch', 'configmap', 'kept', '-n', g.namespace, '--type=merge', '-p', '{"data":{"v":"drifted"}}'])
    const env: Environment = (await run('app')).env
    expect(ready(env)).toMatchObject({ status: 'True' })
    expect((await cm('kept'))?.data?.v).toBe('3')
    expect((await readFile(cached)).toString()).not.toBe('not the layer')
    expect(
      (await readdir(join(g.scratch(), 'cache', 'blobs', 'sha256'))).filter((f) => f.endsWith('.partial')),
    ).toEqual([])
  })

  it('an entry name with a newline is refused before extraction, and nothing is applied', async () => {
    await pushRaw(
      g,
      `${repository}:4.0.0`,
      await tarGz({
        './app/kept.yaml': writeYaml(configMap('kept', { v: '4' })),
        './app/evil\n.yaml': writeYaml(configMap('evil', { v: '4' })),
      }),
    )
    await pin('4.0.0')
    const { env, outcome } = await run('app')
    expect(ready(env)).toMatchObject({
      reason: 'UnsafePath',
      message: expect.stringContaining('has a control character; nothing of 4.0.0 was applied; still running 3.0.0'),
    })
    expect(outcome).toEqual({ next: 'stop' })
    expect((await cm('kept'))?.data?.v).toBe('3')
    expect(await cm('evil')).toBeUndefined()
  })
})
