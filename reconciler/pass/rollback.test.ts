import { describe, expect, it } from 'vitest'
import type { Environment, HistoryEntry } from '../../api/environment.ts'
import { chooseRollback, lastHealthy, rollbackTarget } from './rollback.ts'

const d = (c: string): string => `sha256:${c.repeat(64)}`
const row = (version: string, digest: string, result: string): HistoryEntry => ({
  version,
  digest,
  result,
  started: 't',
  finished: 't',
})
const history = [row('1.0.0', d('a'), 'Succeeded'), row('1.1.0', d('b'), 'Succeeded'), row('1.2.0', d('c'), 'HealthCheckFailed')]

describe('rollback choices', () => {
  it('lastHealthy skips failures and the version or digest being left', () => {
    expect(lastHealthy(history, { digest: d('c') })).toMatchObject({ version: '1.1.0' })
    expect(lastHealthy(history, { digest: d('b') })).toMatchObject({ version: '1.0.0' })
    expect(lastHealthy(history, { version: '1.1.0' })).toMatchObject({ version: '1.0.0' })
    expect(lastHealthy([], {})).toBeUndefined()
  })

  it('rollbackTarget holds only while the pin is the digest rolled back from, with rollback on', () => {
    const status = { history, rolledBackFrom: d('c') }
    expect(rollbackTarget(status, d('c'), 'onFailure')).toMatchObject({ version: '1.1.0' })
    expect(rollbackTarget(status, d('d'), 'onFailure')).toBeUndefined()
    expect(rollbackTarget(status, d('c'), undefined)).toBeUndefined()
  })

  it('berth rollback: the last Ready version before the pin, or the one asked for', () => {
    const env = {
      spec: { version: '~1' },
      status: { history: [...history.slice(0, 2)], lastAttemptedVersion: '1.1.0', lastAttemptedDigest: d('b') },
    } as unknown as Environment
    // A range pin: what it resolved to last (by digest) is what is left, not the range text.
    expect(chooseRollback(env)).toMatchObject({ version: '1.0.0' })
    // A pin that never resolved: what runs is the last good version, and rollback goes there.
    const unresolved = { ...env, spec: { version: '~7' } } as Environment
    expect(chooseRollback(unresolved)).toMatchObject({ version: '1.1.0' })
    expect(chooseRollback(env, '1.1.0')).toMatchObject({ version: '1.1.0' })
    expect(chooseRollback(env, '1.2.0')).toBeUndefined()
  })
})
