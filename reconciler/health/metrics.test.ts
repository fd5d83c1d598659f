import { describe, expect, it } from 'vitest'
import type { MetricCheck, MetricState } from '../../api/environment.ts'
import { judgeMetrics, satisfies } from './metrics.ts'
import type { Reading } from './prometheus.ts'

const t0 = Date.parse('2026-01-01T00:00:00Z')
const at = (s: number): Date => new Date(t0 + s * 1000)
const check: MetricCheck = { name: 'error-rate', query: 'rate(errors[1m])', condition: '< 0.01', for: '1m', interval: '10s' }
const value = (text: string, series = ''): Reading => ({ kind: 'values', values: [{ text, value: Number(text), series }] })

/** Evaluate at `seconds` what `reading` says, after `before`. */
async function step(seconds: number, reading: Reading, before?: MetricState[], checks = [check]) {
  let asked = 0
  const judged = await judgeMetrics({
    checks,
    before,
    now: at(seconds),
    read: () => {
      asked++
      return Promise.resolve(reading)
    },
  })
  return { ...judged, asked }
}

describe('metric gates: every evaluation for `for`, or failure', () => {
  it('compares as the condition says', () => {
    expect(satisfies(0.001, '< 0.01')).toBe(true)
    expect(satisfies(0.01, '< 0.01')).toBe(false)
    expect(satisfies(0.01, '<= 0.01')).toBe(true)
    expect(satisfies(1, '>0')).toBe(true)
    expect(satisfies(0, '>= 1e-3')).toBe(false)
    expect(satisfies(3, '== 3')).toBe(true)
    expect(satisfies(3, '!= 3')).toBe(false)
  })

  it('passes only once an evaluation at least `for` after the first good one is good too', async () => {
    const first = await step(0, value('0.001'))
    expect(first.outcome).toBe('waiting')
    expect(first.checks[0]).toMatchObject({ result: 'Passing', value: '0.001', passingSince: at(0).toISOString() })
    expect(first.message).toBe('metric error-rate is 0.001 (< 0.01); must hold 1m more')
    expect(first.nextMs).toBe(10_000)
    const later = await step(50, value('0.002'), first.checks)
    expect(later.outcome).toBe('waiting')
    const done = await step(60, value('0.002'), later.checks)
    expect(done.outcome).toBe('passed')
    expect(done.checks[0]).toMatchObject({ result: 'Passed', passingSince: at(0).toISOString() })
  })

  it('is asked only when its interval is due; a passed check is not asked again', async () => {
    const first = await step(0, value('0'))
    expect((await step(5, value('0'), first.checks)).asked).toBe(0)
    expect((await step(10, value('0'), first.checks)).asked).toBe(1)
    const passed: MetricState[] = [{ ...first.checks[0], result: 'Passed' } as MetricState]
    expect((await step(500, value('9'), passed)).asked).toBe(0)
  })

  it('one value that breaks the condition fails, naming the query, the value, the series and the condition', async () => {
    const first = await step(0, value('0.001'))
    const bad = await step(10, value('0.2', '{job="shop"}'), first.checks)
    expect(bad.outcome).toBe('failed')
    expect(bad.decidedBy).toBe('error-rate')
    expect(bad.message).toBe('metric error-rate: rate(errors[1m]) is 0.2 for {job="shop"}, which is not < 0.01')
  })

  it('a failure stands: better values later do not undo it', async () => {
    const bad = await step(0, value('0.5'))
    const later = await step(60, value('0'), bad.checks)
    expect(later.asked).toBe(0)
    expect(later.outcome).toBe('failed')
  })

  it('every series must satisfy; the one nearest to breaking is shown', async () => {
    const two: Reading = { kind: 'values', values: [{ text: '0.001', value: 0.001, series: 'a' }, { text: '0.005', value: 0.005, series: 'b' }] }
    expect((await step(0, two)).checks[0]?.value).toBe('0.005')
  })

  it('no answer or no data waits, and restarts `for`: a gap is not proof', async () => {
    const first = await step(0, value('0'))
    const gap = await step(30, { kind: 'unreachable', why: 'Prometheus at http://p did not answer: ECONNREFUSED' }, first.checks)
    expect(gap.outcome).toBe('waiting')
    expect(gap.checks[0]).toMatchObject({ result: 'Waiting', value: '0' })
    expect(gap.checks[0]?.passingSince).toBeUndefined()
    expect(gap.message).toBe('metric error-rate: Prometheus at http://p did not answer: ECONNREFUSED')
    const back = await step(70, value('0'), gap.checks)
    expect(back.checks[0]).toMatchObject({ result: 'Passing', passingSince: at(70).toISOString() })
    expect((await step(130, value('0'), back.checks)).outcome).toBe('passed')
  })

  it('a query Prometheus refuses fails at once: asking again gives the same', async () => {
    const refused = await step(0, { kind: 'refused', why: 'Prometheus refused the query (bad_data): parse error' })
    expect(refused.outcome).toBe('failed')
    expect(refused.message).toContain('(query rate(errors[1m]))')
  })

  it('several checks: failed if any fails, passed when all passed, else the soonest due', async () => {
    const slow: MetricCheck = { ...check, name: 'latency', query: 'p99', condition: '< 300', interval: '30s', for: '0s' }
    const both = await step(0, value('0'), undefined, [check, slow])
    expect(both.checks.map((c) => c.result)).toEqual(['Passing', 'Passed'])
    expect(both.decidedBy).toBe('error-rate')
    expect(both.nextMs).toBe(10_000)
  })
})
