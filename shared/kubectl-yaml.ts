/**
 * What a plain YAML scalar means to kubectl. kubectl (and the apiserver's own YAML decoding)
 * reads manifests through sigs.k8s.io/yaml, that is go-yaml v2, whose plain scalars follow
 * YAML 1.1 rather than 1.2: `on`/`off`/`yes`/`no`/`y`/`n` are booleans, `0777` is octal, `0b101`
 * binary, `1_000` a thousand, `08` the number 8. A YAML 1.2 reader would send other objects
 * for the same file. berth reads every manifest with the rules below, which are go-yaml v2's
 * resolve() (checked against the real kubectl: test/kubectl-yaml.test.ts), so an artifact means
 * exactly what `kubectl apply` of the same files would mean. What kubectl cannot read at all
 * (`.inf`, `.nan`: JSON has no such numbers) berth refuses, naming the field.
 */
import * as jsYaml from 'js-yaml'

const { FAILSAFE_SCHEMA, Type } = jsYaml

const NULLS = new Set(['~', 'null', 'Null', 'NULL', ''])
const TRUE = new Set(['y', 'Y', 'yes', 'Yes', 'YES', 'on', 'On', 'ON', 'true', 'True', 'TRUE'])
const FALSE = new Set(['n', 'N', 'no', 'No', 'NO', 'off', 'Off', 'OFF', 'false', 'False', 'FALSE'])
const INFINITE = /^[-+]?\.(inf|Inf|INF)$/
const NOT_A_NUMBER = /^\.(nan|NaN|NAN)$/
/** go-yaml v2's yamlStyleFloat. */
const FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/

/** Go's strconv.ParseInt(s, 0, 64) (base from the prefix: 0x, 0o, 0b, a leading 0 for octal), as a bigint. */
function goInt(s: string): bigint | undefined {
  const m = /^([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/.exec(s)
  if (!m) return undefined
  const [, sign, digits = ''] = m
  const lower = digits.toLowerCase()
  const value = lower.startsWith('0x') || lower.startsWith('0b') || lower.startsWith('0o')
    ? BigInt(lower)
    : digits.length > 1 && digits.startsWith('0')
      ? BigInt(`0o${digits.slice(1)}`)
      : BigInt(digits)
  const signed = sign === '-' ? -value : value
  // Past int64 Go tries uint64 (positive only), then gives up on it as an integer.
  if (signed < -(2n ** 63n) || signed > 2n ** 64n - 1n) return undefined
  return signed
}

/**
 * The number a plain scalar is to go-yaml v2, or undefined when it is not one. An integer past
 * what a JS number holds exactly is a bigint: as a key it is written out exactly (as Go does),
 * as a value berth refuses it ({@link unsendable}).
 */
function goNumber(data: string): number | bigint | undefined {
  if (INFINITE.test(data)) return data.startsWith('-') ? -Infinity : Infinity
  if (NOT_A_NUMBER.test(data)) return Number.NaN
  // Only scalars that start like a number are tried (go-yaml's resolve table: digits, sign, dot).
  if (!/^[-+.0-9]/.test(data)) return undefined
  const plain = data.replaceAll('_', '')
  const integer = goInt(plain)
  if (integer !== undefined) return Number.isSafeInteger(Number(integer)) ? Number(integer) : integer
  if (FLOAT.test(plain)) return Number.parseFloat(plain)
  return undefined
}

const nullType = new Type('tag:yaml.org,2002:null', {
  kind: 'scalar',
  resolve: (data: string | null) => data === null || NULLS.has(data),
  construct: () => null,
  predicate: (value: unknown) => value === null,
  represent: { canonical: () => '~' },
  defaultStyle: 'canonical',
})

const boolType = new Type('tag:yaml.org,2002:bool', {
  kind: 'scalar',
  resolve: (data: string | null) => data !== null && (TRUE.has(data) || FALSE.has(data)),
  construct: (data: string) => TRUE.has(data),
  predicate: (value: unknown) => typeof value === 'boolean',
})

const numberType = new Type('tag:yaml.org,2002:float', {
  kind: 'scalar',
  resolve: (data: string | null) => data !== null && goNumber(data) !== undefined,
  construct: (data: string) => goNumber(data),
  predicate: (value: unknown) => typeof value === 'number' || typeof value === 'bigint',
})

/** go-yaml v2's plain scalars (null, booleans, numbers; everything else a string) and merge keys. */
export const KUBECTL_SCHEMA = FAILSAFE_SCHEMA.extend({
  implicit: [nullType, boolType, numberType, (jsYaml as unknown as { types: { merge: jsYaml.Type } }).types.merge],
})

/**
 * The first value in `value` kubectl could not send as JSON (an infinite or not-a-number float),
 * or that berth cannot carry exactly (an integer past 2^53), with its path; undefined when none.
 */
export function unsendable(value: unknown, path = ''): { path: string; value: number | bigint } | undefined {
  if (typeof value === 'bigint') return { path: path || '(document)', value }
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : { path: path || '(document)', value }
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const found = unsendable(item, `${path}[${i}]`)
      if (found) return found
    }
    return undefined
  }
  if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      const found = unsendable(item, path ? `${path}.${key}` : key)
      if (found) return found
    }
  }
  return undefined
}
