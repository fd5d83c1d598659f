import { describe, expect, it } from 'vitest'
import { health } from './kstatus.ts'

const deployment = (status: Record<string, unknown>, replicas = 2, generation = 3): object => ({
  kind: 'Deployment',
  metadata: { generation },
  spec: { replicas },
  status: { observedGeneration: generation, ...status },
})

describe('health (kstatus rules)', () => {
  it('a Deployment is Current only when every replica is updated, available and ready', () => {
    expect(health(deployment({ replicas: 2, updatedReplicas: 2, availableReplicas: 2, readyReplicas: 2 }))).toEqual({
      status: 'Current',
      message: '',
    })
    expect(
      health(deployment({ replicas: 2, updatedReplicas: 1, availableReplicas: 2, readyReplicas: 2 })),
    ).toMatchObject({ status: 'InProgress', message: '1 of 2 replicas updated' })
    expect(
      health(deployment({ replicas: 3, updatedReplicas: 2, availableReplicas: 2, readyReplicas: 2 })),
    ).toMatchObject({ status: 'InProgress', message: '1 old replicas pending termination' })
    expect(
      health(deployment({ replicas: 2, updatedReplicas: 2, availableReplicas: 1, readyReplicas: 2 })),
    ).toMatchObject({ status: 'InProgress' })
    expect(
      health({ kind: 'Deployment', metadata: { generation: 4 }, spec: {}, status: { observedGeneration: 3 } }),
    ).toMatchObject({ status: 'InProgress', message: 'generation 4 not observed yet' })
    expect(
      health(
        deployment({
          conditions: [
            { type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'too slow' },
          ],
        }),
      ),
    ).toEqual({ status: 'Failed', message: 'ProgressDeadlineExceeded: too slow' })
  })

  it('StatefulSet, DaemonSet, Job, CRD, PVC', () => {
    expect(
      health({
        kind: 'StatefulSet',
        metadata: {},
        spec: { replicas: 1 },
        status: { observedGeneration: 1, readyReplicas: 1, replicas: 1, currentRevision: 'a', updateRevision: 'b' },
      }),
    ).toMatchObject({ status: 'InProgress' })
    expect(
      health({ kind: 'StatefulSet', metadata: {}, spec: { updateStrategy: { type: 'OnDelete' } }, status: {} }),
    ).toMatchObject({ status: 'Current' })
    expect(
      health({
        kind: 'DaemonSet',
        metadata: {},
        status: {
          desiredNumberScheduled: 2,
          currentNumberScheduled: 2,
          updatedNumberScheduled: 2,
          numberAvailable: 1,
          numberReady: 2,
        },
      }),
    ).toMatchObject({ status: 'InProgress' })
    expect(
      health({
        kind: 'Job',
        metadata: {},
        status: { conditions: [{ type: 'Failed', status: 'True', message: 'backoff' }] },
      }),
    ).toEqual({ status: 'Failed', message: 'backoff' })
    expect(health({ kind: 'Job', metadata: {}, status: {} })).toMatchObject({
      status: 'InProgress',
      message: 'not started yet',
    })
    expect(
      health({
        kind: 'CustomResourceDefinition',
        metadata: {},
        status: { conditions: [{ type: 'Established', status: 'True' }] },
      }),
    ).toMatchObject({ status: 'Current' })
    expect(health({ kind: 'PersistentVolumeClaim', metadata: {}, status: { phase: 'Pending' } })).toMatchObject({
      status: 'InProgress',
    })
  })

  it('generic objects: a Ready condition decides, Stalled fails, none means Current', () => {
    expect(
      health({
        kind: 'Widget',
        metadata: {},
        status: { conditions: [{ type: 'Ready', status: 'False', message: 'waiting' }] },
      }),
    ).toEqual({ status: 'InProgress', message: 'waiting' })
    expect(
      health({
        kind: 'Widget',
        metadata: {},
        status: { conditions: [{ type: 'Stalled', status: 'True', message: 'broken' }] },
      }),
    ).toEqual({ status: 'Failed', message: 'broken' })
    expect(health({ kind: 'ConfigMap', metadata: {} })).toMatchObject({ status: 'Current' })
    expect(health({ kind: 'ConfigMap', metadata: { deletionTimestamp: '2026-01-01T00:00:00Z' } })).toMatchObject({
      status: 'InProgress',
      message: 'terminating',
    })
  })
})
