import { execFile } from 'node:child_process'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { writeYaml } from '../shared/yaml-writer.ts'
import { beforeAll, describe, expect, it } from 'vitest'
import type { Environment } from '../api/environment.ts'
import { fetchArtifact } from '../reconciler/source/fetch.ts'
import { resolve } from '../reconciler/source/resolve.ts'
import { configMap } from './support/config-repo.ts'
import { environment, installCrd, passes, publishApp } from './support/environments.ts'
import { useGround } from './support/ground.ts'
import { pushRaw as pushRawTo, tarGz } from './support/raw-artifacts.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'
const run = promisify(execFile)

type MediaTypes = { layer?: string; config?: string }
const pushRaw = (reference: string, layer: Buffer, mediaTypes: MediaTypes = {}): Promise<void> =>
  pushRawTo(g, reference, layer, mediaTypes)

describe('what the reconciler accepts and refuses from a registry', () => {
  let repository = ''
  const { envRef, pass, ready } = passes(g)
  const cm = (name: string): Promise<{ data?: Record<string, string> } | undefined> =>
    g.kube().get({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: g.namespace } })

  beforeAll(async () => {
    await installCrd(g.kube())
    repository = `${g.ground.registries.plain.host}/${g.repository}/app`
    await publishApp(g.scratch(), repository, '1.0.0', { a: configMap('kept', { v: '1' }) })
    await g.kube().apply(
      environment(g.namespace, 'app', {
        source: { repository: `oci://${repository}`, plainHTTP: true },
        version: '1.0.0',
      }),
    )
    expect(ready(await pass('app'))).toMatchObject({ status: 'True' })
  })

  it('Environments pinned to the same digest can fetch it at the same time into one cache', async () => {
    await publishApp(g.scratch(), repository, '4.0.0', { a: configMap('kept', { v: '4' }) })
    const resolved = await resolve(repository, '4.0.0', undefined, { plainHttp: true })
    const cache = join(g.scratch(), 'shared-cache')
    const fetches = Array.from({ length: 4 }, () => fetchArtifact(repository, resolved, { plainHttp: true }, cache))
    for (const files of await Promise.all(fetches))
      expect([...files.keys()].filter((f) => f.startsWith('app/'))).toEqual([
        expect.stringMatching(/configmap_kept\.yaml$/),
      ])
    expect((await readdir(join(cache, 'blobs', 'sha256'))).filter((f) => f.endsWith('.partial'))).toEqual([])
  })

  const refusals: Array<[string, () => Promise<void>, RegExp]> = [
    [
      'a layer with the wrong media type',
      () => pushRaw(`${repository}:2.0.1`, Buffer.from('x'), { layer: 'application/octet-stream' }),
      /layer media type application\/octet-stream/,
    ],
    [
      'a config with the wrong media type',
      () => pushRaw(`${repository}:2.0.2`, Buffer.from('x'), { config: 'application/vnd.oci.image.config.v1+json' }),
      /config media type/,
    ],
    [
      'a tar.gz with a symlink',
      async () =>
        pushRaw(
          `${repository}:2.0.3`,
          await tarGz({ 'app/a.yaml': writeYaml(configMap('kept', { v: 'evil' })) }, [
            { name: 'app/link', type: 'SymbolicLink', linkpath: '/etc/passwd' },
          ]),
        ),
      /"app\/link" is a symbolic link/,
    ],
    [
      'a tar.gz that climbs out',
      async () => pushRaw(`${repository}:2.0.4`, await tarGz({ 'app/../../x.yaml': 'a: 1' })),
      /absolute path or "\.\."/,
    ],
    [
      'a document without a name',
      async () =>
        pushRaw(
          `${repository}:2.0.5`,
          await tarGz({ 'app/a.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n' }),
        ),
      /app\/a\.yaml#1: ConfigMap has no metadata\.name/,
    ],
    [
      'no folder for the environment',
      async () => pushRaw(`${repository}:2.0.6`, await tarGz({ 'other/a.yaml': writeYaml(configMap('x', {})) })),
      /no YAML under app\/ \(it has: other\)/,
    ],
  ]
  it.each(refusals)(
    'refuses %s before applying anything; the previous version keeps running',
    async (_label, push, message) => {
      await push()
      const tag = await latestRawTag()
      await g.kube().mergePatch(envRef('app'), { spec: { version: tag } })
      const env = await pass('app')
      expect(ready(env)).toMatchObject({ status: 'False', message: expect.stringMatching(message) })
      expect(env.status?.lastAppliedVersion).toBe('1.0.0')
      expect((await cm('kept'))?.data).toEqual({ v: '1' })
    },
  )

  async function latestRawTag(): Promise<string> {
    const { stdout } = await run(g.ground.parts.oras, ['repo', 'tags', '--plain-http', repository])
    return (
      stdout
        .trim()
        .split('\n')
        .filter((t) => t.startsWith('2.0.'))
        .sort((a, b) => Number(a.split('.')[2]) - Number(b.split('.')[2]))
        .at(-1) ?? ''
    )
  }

  it('an object the apiserver rejects stops the whole application: nothing of the new version lands', async () => {
    await publishApp(g.scratch(), repository, '3.0.0', {
      a: configMap('kept', { v: '3' }),
      b: configMap('new-one', { v: '3' }),
      c: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'bad' }, data: { 'not a valid key!': 'x' } },
    })
    await g.kube().mergePatch(envRef('app'), { spec: { version: '3.0.0' } })
    const env = await pass('app')
    expect(ready(env)).toMatchObject({
      status: 'False',
      reason: 'Invalid',
      message: expect.stringContaining('not a valid key!'),
    })
    expect((await cm('kept'))?.data).toEqual({ v: '1' })
    expect(await cm('new-one')).toBeUndefined()
  })

  it('consumes an artifact in Flux\'s own format (plain tar.gz, no berth metadata)', async () => {
    await pushRaw(
      `${repository}:4.0.0`,
      await tarGz({
        './app/kept.yaml': writeYaml(configMap('kept', { v: 'flux' })),
        './app/more/extra.yml': writeYaml(configMap('extra', { v: 'flux' })),
      }),
    )
    await g.kube().mergePatch(envRef('app'), { spec: { version: '4.0.0' } })
    const env = await pass('app')
    expect(ready(env)).toMatchObject({ status: 'True' })
    expect((await cm('kept'))?.data).toEqual({ v: 'flux' })
    expect((await cm('extra'))?.data).toEqual({ v: 'flux' })
  })

  it('never downloads an unchanged digest again: the cached layer serves even after the registry lost the blob', async () => {
    const env = await g.kube().get<Environment>(envRef('app'))
    const manifest = JSON.parse(
      (await run(g.ground.parts.oras, ['manifest', 'fetch', '--plain-http', `${repository}:4.0.0`])).stdout,
    ) as { layers: Array<{ digest: string }> }
    const layer = manifest.layers[0]?.digest ?? ''
    const res = await fetch(`http://${g.ground.registries.plain.host}/v2/${g.repository}/app/blobs/${layer}`, {
      method: 'DELETE',
    })
    expect(res.status).toBe(202)
    await g.kubectl(['patch', 'configmap', 'kept', '-n', g.namespace, '--type=merge', '-p', '{"data":{"v":"drifted"}}'])
    const after = await pass('app')
    expect(ready(after)).toMatchObject({ status: 'True' })
    expect(after.status?.lastAppliedDigest).toBe(env?.status?.lastAppliedDigest)
    expect((await cm('kept'))?.data).toEqual({ v: 'flux' })
  })

  it('installs a CRD from the artifact, waits until it is Established, then applies its custom resource', async () => {
    const group = `${g.namespace}.example.com`
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: `gadgets.${group}` },
      spec: {
        group,
        scope: 'Namespaced',
        names: { plural: 'gadgets', singular: 'gadget', kind: 'Gadget' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: { openAPIV3Schema: { 'type': 'object', 'x-kubernetes-preserve-unknown-fields': true } },
          },
        ],
      },
    }
    await publishApp(g.scratch(), repository, '5.0.0', {
      crd,
      cr: { apiVersion: `${group}/v1`, kind: 'Gadget', metadata: { name: 'g1' }, spec: { size: 2 } },
    })
    await g.kube().mergePatch(envRef('app'), { spec: { version: '5.0.0' } })
    const env = await pass('app')
    expect(ready(env)).toMatchObject({ status: 'True' })
    expect(
      await g
        .kube()
        .get({ apiVersion: `${group}/v1`, kind: 'Gadget', metadata: { name: 'g1', namespace: g.namespace } }),
    ).toMatchObject({ spec: { size: 2 } })
  })
})
