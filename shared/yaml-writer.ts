/**
 * YAML for JSON-shaped values (what a Kubernetes object is): maps, lists, strings, numbers,
 * booleans and null, in block style with keys in their given order.
 *
 * Hand-written rather than a YAML library's dump: packaging writes every object of a release
 * once, and on a one-shot CLI a general dumper costs ~85 ms for 2,000 objects where this costs a
 * few. It is small because it only ever quotes a string when in doubt: a string stays plain only
 * when no YAML 1.1 or 1.2 reader (js-yaml, the `yaml` package, go-yaml in kubectl and Flux) can
 * take it for anything but that string; multi-line strings become literal blocks (`|`) so a
 * config file inside a ConfigMap stays readable and diffable; everything else is double-quoted.
 * shared/yaml-writer.test.ts reads the output back with two YAML libraries and compares.
 */

/** The YAML text of `value`, ending in a newline. */
export function writeYaml(value: unknown): string {
  const out: string[] = []
  if (isCollection(value) && !isEmpty(value)) writeBlock(value, '', out)
  else out.push(scalar(value, ''), '\n')
  return out.join('')
}

type Collection = readonly unknown[] | Record<string, unknown>

function isCollection(value: unknown): value is Collection {
  return typeof value === 'object' && value !== null
}

function isEmpty(value: Collection): boolean {
  return Array.isArray(value) ? value.length === 0 : Object.keys(value).length === 0
}

/** A non-empty map or list at `indent`; each entry starts on its own line. */
function writeBlock(value: Collection, indent: string, out: string[]): void {
  if (Array.isArray(value)) {
    for (const item of value as readonly unknown[]) {
      out.push(indent, '-')
      writeAfterDash(item, indent, out)
    }
    return
  }
  for (const [key, item] of Object.entries(value)) {
    if (item === undefined) continue
    out.push(indent, plainOrQuoted(key), ':')
    writeValue(item, `${indent}  `, out)
  }
}

/** A list item: a map continues on the dash's line (`- name: a`), as kubectl and Helm print it. */
function writeAfterDash(item: unknown, indent: string, out: string[]): void {
  if (!isCollection(item) || isEmpty(item) || Array.isArray(item)) {
    writeValue(item, `${indent}  `, out)
    return
  }
  const inner = `${indent}  `
  const lines: string[] = []
  writeBlock(item, inner, lines)
  // The first key goes after "- " instead of on a line of its own.
  lines[0] = ' '
  out.push(...lines)
}

/** What follows `key:` or `-`: a nested block on the next lines, or ` scalar`. */
function writeValue(value: unknown, indent: string, out: string[]): void {
  if (isCollection(value) && !isEmpty(value)) {
    out.push('\n')
    writeBlock(value, indent, out)
    return
  }
  out.push(' ', scalar(value, indent), '\n')
}

function scalar(value: unknown, indent: string): string {
  if (value === null || value === undefined) return 'null'
  if (typeof value === 'boolean') return value ? 'true' : 'false'
  if (typeof value === 'number') return number(value)
  if (typeof value === 'string') {
    // A document that is only a string (never an object) is quoted: a root block counts its indentation differently.
    return value.includes('\n') && indent !== '' ? literalOrQuoted(value, indent) : plainOrQuoted(value)
  }
  if (Array.isArray(value)) return '[]'
  if (typeof value === 'object') return '{}'
  throw new TypeError(`cannot write a ${typeof value} as YAML`)
}

function number(value: number): string {
  if (Number.isNaN(value)) return '.nan'
  if (value === Infinity) return '.inf'
  if (value === -Infinity) return '-.inf'
  return String(value)
}

/** Words that some YAML reader takes for a boolean or null (YAML 1.1 included: kubectl's go-yaml). */
const KEYWORDS = new Set(
  ['y', 'yes', 'n', 'no', 'true', 'false', 'on', 'off', 'null'].flatMap((w) => [
    w,
    `${w.slice(0, 1).toUpperCase()}${w.slice(1)}`,
    w.toUpperCase(),
  ]),
)

/**
 * Letters, digits and `_./:@+=-`: nothing a YAML reader treats as syntax inside a plain scalar.
 * A leading `-` only before more (`--port`), never as `---`, a document marker, as is `...`.
 */
const SAFE = /^(?!---|\.\.\.)(?:[A-Za-z0-9_./]|-(?=.))[A-Za-z0-9_./:@+=-]*$/
/**
 * Could be read as a number or a timestamp by some YAML version: a sign, digits, `._:`,
 * exponents, hex/octal/binary prefixes, `T`/`Z`; or infinity and not-a-number.
 */
const NUMBER_LIKE = /^[-+.]?[0-9][0-9a-fA-F._:+\-xXoOtTzZ]*$|^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$/

function plainOrQuoted(text: string): string {
  const plain = SAFE.test(text) && !text.endsWith(':') && !KEYWORDS.has(text) && !NUMBER_LIKE.test(text)
  return plain ? text : quoted(text)
}

/**
 * Double-quoted: JSON's escapes are YAML's. JSON leaves DEL, the C1 controls and the BOM as they
 * are, which YAML does not allow in a document: those are escaped too.
 */
function quoted(text: string): string {
  return JSON.stringify(text).replace(
    /[\u007f-\u009f\ufeff\ufffe\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
}

/**
 * Characters a literal block cannot hold as they are (they would be folded, dropped or refused):
 * carriage returns, C0 and C1 controls other than tab and newline, line separators, BOM.
 */
// eslint-disable-next-line no-control-regex -- control characters are exactly what this finds
const NOT_LITERAL = /[\r\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/

/**
 * A multi-line string as a literal block: `|` keeps one final newline, `|-` none; an indentation
 * indicator when the first line starts with a space. Strings a block would not give back exactly
 * (whitespace-only or trailing empty lines, control characters) are double-quoted instead.
 */
function literalOrQuoted(text: string, indent: string): string {
  const lines = text.split('\n')
  const body = text.endsWith('\n') ? lines.slice(0, -1) : lines
  if (NOT_LITERAL.test(text) || body.some((line) => line.length > 0 && line.trim() === '') || body.at(-1) === '')
    return quoted(text)
  const chomp = text.endsWith('\n') ? '' : '-'
  const first = body.find((line) => line.length > 0) ?? ''
  const indicator = /^\s/.test(first) ? '2' : ''
  return `|${indicator}${chomp}\n${body.map((line) => (line.length > 0 ? indent + line : '')).join('\n')}`
}
