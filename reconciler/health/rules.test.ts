import { describe, expect, it } from 'vitest'
import { healthJudge } from './rules.ts'

const rules = healthJudge([
  {
    apiVersion: 'shop.example.com/v1',
    kind: 'Widget',
    inProgress: 'status.conditions.exists(c, c.type == \'Building\' && c.status == \'True\')',
    failed: 'status.conditions.exists(c, c.type == \'Broken\' && c.status == \'True\')',
    current: 'status.conditions.exists(c, c.type == \'Serving\' && c.status == \'True\')',
  },
])
const widget = (conditions: Array<{ type: string; status: string }>, extra: object = {}): object => ({
  apiVersion: 'shop.example.com/v1',
  kind: 'Widget',
  metadata: { name: 'w', generation: 2 },
  status: { observedGeneration: 2, conditions },
  ...extra,
})

describe('CEL health rules, judged as Flux judges healthCheckExprs', () => {
  it('inProgress, failed, current: the first true decides, in that order', () => {
    expect(rules(widget([{ type: 'Serving', status: 'True' }])).status).toBe('Current')
    expect(rules(widget([{ type: 'Broken', status: 'True' }, { type: 'Serving', status: 'True' }])).status).toBe('Failed')
    expect(rules(widget([{ type: 'Building', status: 'True' }, { type: 'Broken', status: 'True' }])).status).toBe('InProgress')
  })

  it('none true, or a field not there yet: in progress, saying why', () => {
    expect(rules(widget([{ type: 'Serving', status: 'False' }]))).toEqual({
      status: 'InProgress',
      message: 'spec.health.exprs: current is not true yet',
    })
    const fresh = rules({ apiVersion: 'shop.example.com/v1', kind: 'Widget', metadata: { name: 'w' } })
    expect(fresh.status).toBe('InProgress')
    expect(fresh.message).toMatch(/current is not true yet \(inProgress: .+\)/)
  })

  it('a generation its controller has not observed is in progress, whatever the conditions say', () => {
    const stale = widget([{ type: 'Serving', status: 'True' }], { status: { observedGeneration: 1, conditions: [] } })
    expect(rules(stale)).toEqual({ status: 'InProgress', message: 'generation 2 not observed yet' })
  })

  it('the rules take precedence over kstatus for their kind only', () => {
    // kstatus would call a Ready=False Widget in progress; the rules say Current.
    const ready = widget([{ type: 'Serving', status: 'True' }, { type: 'Ready', status: 'False' }])
    expect(rules(ready).status).toBe('Current')
    const other = { apiVersion: 'v1', kind: 'Pod', metadata: {}, status: { conditions: [{ type: 'Ready', status: 'False' }] } }
    expect(rules(other).status).toBe('InProgress')
    expect(rules({ ...ready, apiVersion: 'shop.example.com/v2' }).status).toBe('InProgress')
  })
})
