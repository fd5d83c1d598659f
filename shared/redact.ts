/**
 * Credentials never reach a log line: every field whose name says it holds a secret is
 * replaced, at any depth (pino's own `redact` paths match fixed depths only, so a top-level
 * `password` printed in clear).
 */

export const REDACTED = '[Redacted]'

const NAMES = new Set([
  'password',
  'passwd',
  'auth',
  'authorization',
  'credential',
  'credentials',
  'secret',
  'apikey',
  'privatekey',
  'clientkeydata',
  'dockerconfigjson',
])

/** Whether a field of this name holds a secret: `password`, `BERTH_REGISTRY_PASSWORD`, `token`, `client-key-data`… */
export function isSecretField(name: string): boolean {
  const plain = name.toLowerCase().replace(/[-_.\s]/g, '')
  return NAMES.has(plain) || /(password|token|secret)$/.test(plain)
}

/** A copy of `value` with every secret field replaced; cycles and depth are bounded. */
export function redact<T>(value: T): T {
  return copy(value, new WeakSet(), 0) as T
}

function copy(value: unknown, seen: WeakSet<object>, depth: number): unknown {
  if (value === null || typeof value !== 'object') return value
  if (seen.has(value) || depth > 16) return '[…]'
  seen.add(value)
  if (Array.isArray(value)) return value.map((v) => copy(v, seen, depth + 1))
  // An Error's name and message are not own enumerable fields; keep them.
  const source = value instanceof Error ? { ...fieldsOf(value), name: value.name, message: value.message } : value
  return Object.fromEntries(
    Object.entries(source).map(([k, v]) => [k, isSecretField(k) ? REDACTED : copy(v, seen, depth + 1)]),
  )
}

const fieldsOf = (value: object): Record<string, unknown> => Object.fromEntries(Object.entries(value))
