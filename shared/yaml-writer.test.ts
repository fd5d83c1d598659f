import { CORE_SCHEMA, load } from 'js-yaml'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { writeYaml } from './yaml-writer.ts'

/** The readers berth's output meets: js-yaml (berth), the `yaml` package as YAML 1.1 (go-yaml's rules) and 1.2. */
function readers(text: string): unknown[] {
  return [
    load(text, { schema: CORE_SCHEMA }),
    parse(text, { version: '1.1', schema: 'yaml-1.1', uniqueKeys: true }),
    parse(text, { version: '1.2', schema: 'core', uniqueKeys: true }),
  ]
}

function expectRoundTrip(value: unknown): void {
  const text = writeYaml(value)
  for (const read of readers(text)) expect(read, text).toStrictEqual(value)
}

/** Strings that mean something else to some YAML reader, or that need care in a block. */
const TRICKY = [
  '--', '---x', '-.inf', '-x:', '-:', '...x', '-#',
  '', ' ', 'yes', 'No', 'ON', 'off', 'y', 'N', 'true', 'False', 'null', 'Null', '~', '8080', '-1', '+1', '1.0',
  '1.0.1', '1e3', '0x1F', '0o17', '0b101', '012', '1_000', '1:20', '.5', '.inf', '-.Inf', '.NaN', '2001-12-14',
  '2001-12-14T21:59:43.10-05:00', '<<', '=', '-', '- a', '? x', ': x', 'a: b', 'a #b', '#x', '[a]', '{a}', '!x', '&a',
  '*a', '|', '>', '@x', '`x', '%x', '\'x\'', '"x"', 'a:', 'a\tb', '\tx', 'x ', ' x', 'café', 'a\u0085b', 'a\u007fb',
  '\ufeffx', 'a\u2028b', 'a\\b', 'http://x.y/z?a=b&c', 'a\nb', 'a\nb\n', 'a\n\nb\n', 'a\nb\n\n', '\na', ' a\nb',
  'a\n b\n', '\n', '\n\n', 'a\n \nb', 'a \nb', 'a\r\nb', '\u0000', '---', '...', '--- a', 'a\n---\nb', 'a\n...\n',
]

const PLAIN = ['--port', '-v', 'info', 'app', '50m', '64Mi', '12s', 'registry.example.com/app:1.0.3', 'a/b', '_x', 'x=y', 'v1', 'f-12']

/** A small seeded generator: the same values on every run, so a failure can be replayed. */
function generator(seed: number): () => number {
  let state = seed
  return () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff
    return state / 0x7fffffff
  }
}

function randomValue(next: () => number, depth: number): unknown {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T
  const roll = next()
  if (depth > 3 || roll < 0.45) {
    return pick<unknown>([
      pick(TRICKY),
      pick(PLAIN),
      pick(TRICKY) + pick(PLAIN),
      Math.floor(next() * 100000) - 500,
      next() * 1000,
      true,
      false,
      null,
    ])
  }
  if (roll < 0.7) return Array.from({ length: Math.floor(next() * 4) }, () => randomValue(next, depth + 1))
  const object: Record<string, unknown> = {}
  for (let i = Math.floor(next() * 5); i > 0; i--) object[pick([...TRICKY, ...PLAIN])] = randomValue(next, depth + 1)
  return object
}

describe('writeYaml', () => {
  it('writes a Kubernetes object as people write it', () => {
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'shop', labels: { app: 'web' }, annotations: {} },
      spec: {
        replicas: 2,
        template: {
          spec: {
            containers: [{ name: 'app', image: 'ghcr.io/acme/web:1.2.3', args: ['--port', '8080'], env: [] }],
          },
        },
      },
    }
    expect(writeYaml(deployment)).toBe(
      [
        'apiVersion: apps/v1',
        'kind: Deployment',
        'metadata:',
        '  name: web',
        '  namespace: shop',
        '  labels:',
        '    app: web',
        '  annotations: {}',
        'spec:',
        '  replicas: 2',
        '  template:',
        '    spec:',
        '      containers:',
        '        - name: app',
        '          image: ghcr.io/acme/web:1.2.3',
        '          args:',
        '            - --port',
        '            - "8080"',
        '          env: []',
        '',
      ].join('\n'),
    )
  })

  it('keeps a config file inside a ConfigMap readable as a literal block', () => {
    const text = writeYaml({ data: { 'app.yaml': 'server:\n  port: 8080\n', 'indented': '  a\nb' } })
    expect(text).toBe('data:\n  app.yaml: |\n    server:\n      port: 8080\n  indented: |2-\n      a\n    b\n')
    expectRoundTrip({ data: { 'app.yaml': 'server:\n  port: 8080\n', 'indented': '  a\nb' } })
  })

  it('quotes every string a reader could take for something else, and only those', () => {
    for (const text of TRICKY) expectRoundTrip({ [text]: text, list: [text, [text], { [text]: [text] }] })
    for (const text of PLAIN) expect(writeYaml({ key: text })).toBe(`key: ${text}\n`)
    expect(writeYaml({ a: 'yes', b: '8080', c: '1.0.1', d: '.inf', e: '' })).toBe(
      'a: "yes"\nb: "8080"\nc: "1.0.1"\nd: ".inf"\ne: ""\n',
    )
  })

  it('round-trips numbers, booleans, null and empty collections', () => {
    expectRoundTrip({ a: 0, b: -3, c: 1.5, d: 1e21, e: 1e-7, f: true, g: false, h: null, i: [], j: {}, k: [[], {}] })
    expect(load(writeYaml({ a: Infinity, b: -Infinity }), { schema: CORE_SCHEMA })).toStrictEqual({
      a: Infinity,
      b: -Infinity,
    })
  })

  it('round-trips 3,000 generated documents through three readers', () => {
    const next = generator(20261124)
    for (let i = 0; i < 3000; i++) expectRoundTrip(randomValue(next, 0))
  })
})
