import type { KubernetesObject } from '@kubernetes/client-node'
import { describe, expect, it } from 'vitest'
import { useGround } from './support/ground.ts'

const g = useGround(import.meta.url)

type Crd = KubernetesObject & { status?: { conditions?: Array<{ type: string; status: string }> } }

describe('a CustomResourceDefinition on the real apiserver', () => {
  // CRDs are cluster-scoped: a group unique to this file keeps parallel runs apart.
  const group = `${g.namespace}.proof.berth.dev`
  const crd = {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `widgets.${group}` },
    spec: {
      group,
      scope: 'Namespaced',
      names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: {
                spec: { type: 'object', required: ['size'], properties: { size: { type: 'integer', minimum: 1 } } },
              },
            },
          },
        },
      ],
    },
  }

  it('reaches Established, then serves its kind with schema validation', async () => {
    await g.kube().apply(crd)
    const established = await g
      .kube()
      .waitFor<Crd>(
        {
          apiVersion: 'apiextensions.k8s.io/v1',
          kind: 'CustomResourceDefinition',
          metadata: { name: crd.metadata.name },
        },
        (o) => o?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false,
        30_000,
      )
    expect(established?.status?.conditions).toContainEqual(
      expect.objectContaining({ type: 'Established', status: 'True' }),
    )

    const waited = await g.kubectl(['wait', '--for=condition=Established', `crd/${crd.metadata.name}`, '--timeout=30s'])
    expect(waited).toContain('condition met')

    const widget = {
      apiVersion: `${group}/v1`,
      kind: 'Widget',
      metadata: { name: 'w1', namespace: g.namespace },
      spec: { size: 3 },
    }
    await g.kube().apply(widget)
    const listed = JSON.parse(await g.kubectl(['get', `widgets.${group}`, '-n', g.namespace, '-o', 'json'])) as {
      items: Array<{ spec: { size: number } }>
    }
    expect(listed.items.map((i) => i.spec.size)).toEqual([3])

    await expect(
      g.kube().apply({ ...widget, metadata: { name: 'w2', namespace: g.namespace }, spec: { size: 0 } }),
    ).rejects.toMatchObject({
      reason: 'Invalid',
      message: expect.stringContaining('spec.size'),
    })
  })
})
