import { describe, expect, it } from 'vitest'
import { cronProblem, windowVerdict } from './windows.ts'

// Friday 2026-12-04 is a Friday; Europe/Berlin is UTC+1 in December.
const at = (iso: string): Date => new Date(iso)
const fridayEvening = { kind: 'deny' as const, schedule: '0 18 * * 5', duration: '62h', timeZone: 'Europe/Berlin' }
const workdays = { kind: 'allow' as const, schedule: '0 9 * * 1-4', duration: '8h', timeZone: 'Europe/Berlin' }

describe('promotion windows', () => {
  it('holds a version inside a deny window until it ends, in the window\'s time zone', () => {
    expect(windowVerdict([fridayEvening], at('2026-12-04T16:59:00Z'))).toEqual({ open: true })
    const held = windowVerdict([fridayEvening], at('2026-12-04T17:00:00Z'))
    expect(held).toMatchObject({ open: false, why: expect.stringContaining('inside the deny window "0 18 * * 5"') })
    // Friday 18:00 Berlin + 62 h = Monday 08:00 Berlin = 07:00 UTC.
    expect(held.open ? undefined : held.opensAt).toEqual(at('2026-12-07T07:00:00Z'))
  })

  it('holds a version outside every allow window until the next one opens', () => {
    expect(windowVerdict([workdays], at('2026-12-02T10:00:00Z'))).toEqual({ open: true })
    const evening = windowVerdict([workdays], at('2026-12-02T17:30:00Z'))
    expect(evening).toMatchObject({ open: false, why: expect.stringContaining('outside every allow window') })
    expect(evening.open ? undefined : evening.opensAt).toEqual(at('2026-12-03T08:00:00Z'))
    // Thursday evening: the next allow window is Monday's.
    const weekend = windowVerdict([workdays], at('2026-12-03T17:00:00Z'))
    expect(weekend.open ? undefined : weekend.opensAt).toEqual(at('2026-12-07T08:00:00Z'))
  })

  it('steps over a deny window that covers the next allow one', () => {
    const freeze = { kind: 'deny' as const, schedule: '0 0 24 12 *', duration: '216h' }
    const daily = { kind: 'allow' as const, schedule: '0 10 * * *', duration: '2h' }
    const held = windowVerdict([daily, freeze], at('2026-12-24T12:30:00Z'))
    expect(held.open ? undefined : held.opensAt).toEqual(at('2027-01-02T10:00:00Z'))
  })

  it('refuses what croner cannot read, naming it', () => {
    expect(cronProblem('0 18 * * 5', 'Europe/Berlin')).toBeUndefined()
    expect(cronProblem('every friday')).toMatch(/^not a cron schedule: /)
    expect(cronProblem('0 18 * * 5', 'Mars/Olympus')).toMatch(/^not a cron schedule in Mars\/Olympus/)
  })
})
