import { describe, expect, it } from 'vitest'
import { previewOf, previewVersion } from '../../shared/previews.ts'
import { planPreviews } from './previews.ts'

const t0 = Date.parse('2026-01-01T00:00:00Z')
const at = (minutes: number): Date => new Date(t0 + minutes * 60_000)
const spec = { maxPreviews: 2, ttl: '1h' }

describe('preview versions', () => {
  it('0.0.0-pr.<number>.<push>: only that exact form, pushes ordered as numbers', () => {
    expect(previewVersion(7, 10)).toBe('0.0.0-pr.7.10')
    expect(previewOf('0.0.0-pr.7.10')).toEqual({ number: 7, push: 10 })
    for (const tag of ['1.0.0', '0.0.0-pr.7', '0.0.0-pr.07.1', '1.0.0-pr.7.1', '0.0.0-pr.7.0', 'sha256-ab.sig']) {
      expect(previewOf(tag)).toBeUndefined()
    }
  })
})

describe('planPreviews: which previews a set keeps', () => {
  it('the newest push of each pull request; releases and other tags ignored', () => {
    const plan = planPreviews(['1.0.0', '0.0.0-pr.1.9', '0.0.0-pr.1.10', '0.0.0-pr.2.1'], spec, undefined, at(0))
    expect(plan.keep.map((w) => w.version)).toEqual(['0.0.0-pr.1.10', '0.0.0-pr.2.1'])
    expect(plan.nextExpiryMs).toBe(60 * 60_000)
  })

  it('the ttl runs from the newest push the set saw; a new push restarts it; an expired preview stays gone', () => {
    const first = planPreviews(['0.0.0-pr.1.1'], spec, undefined, at(0))
    const status = { previews: first.keep.map((w) => ({ ...w, environment: 'e', ready: 'True' })) }
    expect(planPreviews(['0.0.0-pr.1.1'], spec, status, at(59)).keep).toHaveLength(1)
    const expired = planPreviews(['0.0.0-pr.1.1'], spec, status, at(60))
    expect(expired.keep).toEqual([])
    expect(expired.expired).toEqual([{ number: 1, version: '0.0.0-pr.1.1' }])
    expect(planPreviews(['0.0.0-pr.1.1'], spec, { expired: expired.expired }, at(61)).keep).toEqual([])
    const pushed = planPreviews(['0.0.0-pr.1.1', '0.0.0-pr.1.2'], spec, { ...status, expired: expired.expired }, at(61))
    expect(pushed.keep).toMatchObject([{ version: '0.0.0-pr.1.2', pushed: at(61).toISOString(), since: at(0).toISOString() }])
  })

  it('maxPreviews: the pull requests known longest keep running, the rest are refused', () => {
    const first = planPreviews(['0.0.0-pr.9.1'], spec, undefined, at(0))
    const status = { previews: first.keep.map((w) => ({ ...w, environment: 'e', ready: 'True' })) }
    const plan = planPreviews(['0.0.0-pr.9.1', '0.0.0-pr.3.1', '0.0.0-pr.4.1'], spec, status, at(5))
    expect(plan.keep.map((w) => w.number)).toEqual([9, 3])
    expect(plan.refused.map((w) => w.number)).toEqual([4])
  })
})
