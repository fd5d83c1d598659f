import { describe, expect, it } from 'vitest'
import type { Environment, EnvironmentStatus } from '../../api/environment.ts'
import { firstAttemptOf, recordHistory, sameStatus, settled, statusPatch } from './status.ts'

const A = `sha256:${'a'.repeat(64)}`
const B = `sha256:${'b'.repeat(64)}`
const row = (
  digest: string,
  result: string,
  started: string,
  finished: string,
): Parameters<typeof recordHistory>[1] => ({
  version: digest === A ? '1.0.0' : '1.1.0',
  digest,
  started,
  finished,
  result,
})

describe('history', () => {
  it('keeps one row per application: its outcome replaces "Progressing", a repeated outcome changes nothing', () => {
    const status: EnvironmentStatus = {}
    recordHistory(status, row(A, 'Progressing', 't1', 't2'))
    recordHistory(status, row(A, 'Progressing', 't1', 't3'))
    recordHistory(status, row(A, 'Succeeded', 't1', 't4'))
    recordHistory(status, row(A, 'Succeeded', 't1', 't9'))
    expect(status.history).toEqual([
      { version: '1.0.0', digest: A, started: 't1', finished: 't4', result: 'Succeeded' },
    ])
  })

  it('never overwrites an outcome: a later failure of the same digest is a row of its own', () => {
    const status: EnvironmentStatus = {}
    recordHistory(status, row(A, 'Succeeded', 't1', 't2'))
    recordHistory(status, row(A, 'HealthCheckFailed', 't1', 't5'))
    recordHistory(status, { ...row(B, 'Progressing', 't6', 't6'), by: 'sre' })
    recordHistory(status, row(B, 'Succeeded', 't6', 't7'))
    expect(status.history?.map((h) => `${h.version} ${h.result} ${h.by ?? '-'}`)).toEqual([
      '1.0.0 Succeeded -',
      '1.0.0 HealthCheckFailed -',
      '1.1.0 Succeeded sre',
    ])
    expect(firstAttemptOf(status, B)).toBe('t6')
    expect(firstAttemptOf(status, A)).toBeUndefined()
  })

  it('a version still on its way when another is applied never got a result: Superseded; a held one leaves it be', () => {
    const status: EnvironmentStatus = {}
    recordHistory(status, row(A, 'Progressing', 't1', 't2'))
    recordHistory(status, row(B, 'Frozen', 't3', 't3'))
    expect(status.history?.[0]?.result).toBe('Progressing')
    recordHistory(status, row(B, 'Progressing', 't4', 't4'))
    expect(status.history?.map((h) => `${h.version} ${h.result} ${h.finished}`)).toEqual([
      '1.0.0 Progressing t2',
      '1.1.0 Frozen t3',
      '1.1.0 Progressing t4',
    ])
    const moved: EnvironmentStatus = {}
    recordHistory(moved, row(A, 'Progressing', 't1', 't2'))
    recordHistory(moved, row(B, 'Progressing', 't5', 't5'))
    expect(moved.history?.[0]).toMatchObject({ result: 'Superseded', finished: 't5' })
  })

  it('keeps the last ten rows', () => {
    const status: EnvironmentStatus = {}
    for (let i = 0; i < 12; i++)
      recordHistory(status, row(i % 2 ? A : B, 'Succeeded', `t${String(i)}`, `t${String(i)}`))
    expect(status.history).toHaveLength(10)
    expect(status.history?.[0]?.started).toBe('t2')
  })
})

describe('sameStatus', () => {
  const ready = { type: 'Ready', status: 'True' as const, reason: 'Succeeded', message: 'm', lastTransitionTime: 't' }
  const reconciling = { ...ready, type: 'Reconciling', status: 'False' as const }
  it('ignores the order of conditions and keys, and sees any real change', () => {
    const a: EnvironmentStatus = {
      observedGeneration: 2,
      conditions: [ready, reconciling],
      lastAppliedVersion: '1.0.0',
    }
    const b: EnvironmentStatus = {
      lastAppliedVersion: '1.0.0',
      conditions: [reconciling, ready],
      observedGeneration: 2,
    }
    expect(sameStatus(a, b)).toBe(true)
    expect(sameStatus(a, { ...b, observedGeneration: 3 })).toBe(false)
    expect(sameStatus(a, { ...b, conditions: [ready, { ...reconciling, message: 'other' }] })).toBe(false)
    expect(sameStatus(undefined, a)).toBe(false)
  })
})

describe('statusPatch: a merge patch that removes what the pass dropped', () => {
  it('sends null for every field the new status no longer has, nested ones included', () => {
    const before: EnvironmentStatus = {
      rolledBackFrom: A,
      verified: { digest: A, key: 'k', keyId: 'id', signature: 's', keys: 'f' },
      lastAppliedVersion: '1.0.0',
    }
    const after: EnvironmentStatus = { lastAppliedVersion: '1.1.0' }
    expect(statusPatch(before, after)).toMatchObject({ rolledBackFrom: null, verified: null, lastAppliedVersion: '1.1.0' })
  })

  it('nulls a schema field even when the copy in hand lacked it (a stale read)', () => {
    expect(statusPatch({}, { lastAppliedVersion: '1.0.0' })).toMatchObject({ rolledBackFrom: null, verified: null })
  })

  it('keeps what stays, and replaces lists whole (a merge patch cannot edit a list)', () => {
    const before: EnvironmentStatus = { inventory: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'a' }] }
    const after: EnvironmentStatus = { inventory: [] }
    expect(statusPatch(before, after).inventory).toEqual([])
  })
})

describe('settled: what promote --wait makes of Ready', () => {
  const env = (reason: string, status = 'False', message = ''): Environment => ({
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Environment',
    metadata: { name: 'prod', namespace: 'shop', generation: 2 },
    spec: {},
    status: {
      observedGeneration: 2,
      conditions: [{ type: 'Ready', status: status as 'True', reason, message, lastTransitionTime: 't' }],
    },
  })

  it('waits through what ends by itself: a rollout, metric checks, a dependency rolling out', () => {
    expect(settled(env('Progressing'), 2)).toBe('pending')
    expect(settled(env('DependencyNotReady'), 2)).toBe('pending')
    expect(settled(env('Succeeded', 'True'), 2)).toBe('ready')
  })

  it('a failed metric check is a failure', () => {
    expect(settled(env('MetricCheckFailed', 'False', 'q is 0.5'), 2)).toEqual({
      failed: { status: 'False', reason: 'MetricCheckFailed', message: 'q is 0.5' },
    })
  })
})
