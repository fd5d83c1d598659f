import { describe, expect, it } from 'vitest'
import { useGround } from './support/ground.ts'

const g = useGround(import.meta.url)

type ConfigMap = {
  apiVersion: 'v1'
  kind: 'ConfigMap'
  metadata: {
    name: string
    namespace: string
    labels?: Record<string, string>
    managedFields?: Array<{ manager: string; operation: string }>
  }
  data: Record<string, string>
}

describe('server-side apply through @kubernetes/client-node', () => {
  const configMap = (data: Record<string, string>): ConfigMap => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'greeting', namespace: g.namespace, labels: { 'app.kubernetes.io/name': 'proof' } },
    data,
  })

  it('creates a ConfigMap that kubectl reads back as applied by berth', async () => {
    await g.kube().apply(configMap({ message: 'hello', count: '1' }))

    const live = JSON.parse(
      await g.kubectl(['get', 'configmap', 'greeting', '-n', g.namespace, '-o', 'json', '--show-managed-fields']),
    ) as ConfigMap
    expect(live.data).toEqual({ message: 'hello', count: '1' })
    expect(live.metadata.labels).toEqual({ 'app.kubernetes.io/name': 'proof' })
    expect(live.metadata.managedFields?.map((f) => [f.manager, f.operation])).toContainEqual(['berth', 'Apply'])
  })

  it('updates in place and drops a field berth no longer applies', async () => {
    await g.kube().apply(configMap({ message: 'hello', count: '1' }))
    await g.kube().apply(configMap({ message: 'bye' }))

    const live = JSON.parse(
      await g.kubectl(['get', 'configmap', 'greeting', '-n', g.namespace, '-o', 'json']),
    ) as ConfigMap
    expect(live.data).toEqual({ message: 'bye' })
  })

  it('takes over a field another manager set when conflicts are forced, and refuses without force', async () => {
    await g.kube().apply(configMap({ message: 'mine' }))
    await g.kubectl([
      'patch',
      'configmap',
      'greeting',
      '-n',
      g.namespace,
      '--type=merge',
      '-p',
      '{"data":{"message":"edited by hand"}}',
    ])

    await expect(g.kube().apply(configMap({ message: 'mine' }), { force: false })).rejects.toMatchObject({
      reason: 'Conflict',
      code: 409,
    })
    await g.kube().apply(configMap({ message: 'mine' }))
    const live = await g
      .kube()
      .get<ConfigMap>({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'greeting', namespace: g.namespace } })
    expect(live?.data.message).toBe('mine')
  })

  it('changes nothing on a dry run', async () => {
    await g.kube().apply(configMap({ message: 'kept' }))
    const dry = await g.kube().apply(configMap({ message: 'would change' }), { dryRun: true })
    expect(dry.data.message).toBe('would change')

    const live = JSON.parse(
      await g.kubectl(['get', 'configmap', 'greeting', '-n', g.namespace, '-o', 'json']),
    ) as ConfigMap
    expect(live.data.message).toBe('kept')
  })

  it('reports a missing object as undefined and an invalid one with the apiserver reason', async () => {
    const ref = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'absent', namespace: g.namespace } }
    expect(await g.kube().get(ref)).toBeUndefined()
    expect(await g.kube().delete(ref)).toBe(false)
    await expect(
      g
        .kube()
        .apply({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'bad-key', namespace: g.namespace },
          data: { 'not a valid key!': 'x' },
        }),
    ).rejects.toMatchObject({ code: 422, reason: 'Invalid', message: expect.stringContaining('not a valid key!') })
    expect(await g.kube().get({ ...ref, metadata: { name: 'bad-key', namespace: g.namespace } })).toBeUndefined()
  })
})
