import { describe, expect, it } from 'vitest'
import { isSecretField, REDACTED, redact } from './redact.ts'

describe('redact', () => {
  it('replaces credential fields at any depth, top level included, and leaves the rest', () => {
    const fields = {
      msg: 'login',
      password: 'hunter2',
      registry: { host: 'r.example', auth: 'dXNlcjpwYXNz', nested: [{ token: 't0ken', name: 'ok' }] },
      env: { 'BERTH_REGISTRY_PASSWORD': 'p', 'client-key-data': 'k', '.dockerconfigjson': 'e30=' },
    }
    const out = redact(fields)
    expect(out).toEqual({
      msg: 'login',
      password: REDACTED,
      registry: { host: 'r.example', auth: REDACTED, nested: [{ token: REDACTED, name: 'ok' }] },
      env: { 'BERTH_REGISTRY_PASSWORD': REDACTED, 'client-key-data': REDACTED, '.dockerconfigjson': REDACTED },
    })
    expect(JSON.stringify(out)).not.toMatch(/hunter2|t0ken|dXNlcjpwYXNz/)
    // The input is not changed.
    expect(fields.password).toBe('hunter2')
  })

  it('knows secret names without taking ordinary ones', () => {
    expect(['accessToken', 'client_secret', 'Authorization', 'credentials'].every(isSecretField)).toBe(true)
    expect(['author', 'name', 'digest', 'keys', 'tokens_used'].some(isSecretField)).toBe(false)
  })

  it('survives cycles and errors', () => {
    const a: Record<string, unknown> = { password: 'x' }
    a.self = a
    expect(redact(a)).toEqual({ password: REDACTED, self: '[…]' })
    const error = Object.assign(new Error('boom'), { token: 'abc' })
    expect(redact({ error })).toEqual({ error: expect.objectContaining({ message: 'boom', token: REDACTED }) })
  })
})
