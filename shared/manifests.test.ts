import { describe, expect, it } from 'vitest'
import { checkObjects, objectKey, parseManifests, toYaml } from './manifests.ts'

describe('parseManifests', () => {
  it('parses a stream, skips empty documents and unwraps Lists', () => {
    const text = [
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}',
      '',
      '# only a comment',
      'apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: s, namespace: ns}}',
    ].join('\n---\n')
    const parsed = parseManifests(text, 'f.yaml')
    expect(parsed.map((p) => [objectKey(p.object), p.source])).toEqual([
      ['/ConfigMap//a', 'f.yaml#1'],
      ['/Service/ns/s', 'f.yaml#4'],
    ])
  })

  it('reads scalars as kubectl does: dates stay strings, merge keys merge', () => {
    const text = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  <<: {since: 2024-01-01}\n  count: 3\n'
    const [only] = parseManifests(text, 'f.yaml')
    if (!only) throw new Error('no object parsed')
    expect(only.object.data).toStrictEqual({ since: '2024-01-01', count: 3 })
    // Written back, the date stays a string to every reader.
    expect(toYaml(only.object)).toContain('since: "2024-01-01"')
  })

  it('reports a syntax error with its line and column', () => {
    expect(() =>
      parseManifests('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n   bad: indent\n', 'y.yaml'),
    ).toThrow(/^y\.yaml:5:\d+: not valid YAML: /)
  })

  it('reports every problem with its location', () => {
    const text
      = 'kind: ConfigMap\nmetadata: {name: a}\n---\n- just\n- a list\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {namespace: 3, name: d}\n'
    expect(() => parseManifests(text, 'x.yaml')).toThrow(
      'x.yaml#1: ConfigMap has no apiVersion\nx.yaml#2: not a Kubernetes object (expected a mapping with apiVersion, kind and metadata.name)\nx.yaml#3: metadata.namespace must be a string',
    )
  })
})

describe('parseManifests: names and duplicate fields', () => {
  it('refuses a name Kubernetes would refuse, naming file, document, field and rule', () => {
    const text = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ../../x\n'
    expect(() => parseManifests(text, 'dev/cm.yaml')).toThrow(
      expect.objectContaining({
        reason: 'InvalidManifest',
        exitCode: 3,
        message: expect.stringMatching(
          /^dev\/cm\.yaml#2: ConfigMap: metadata\.name "\.\.\/\.\.\/x" is not valid: it must be a lowercase RFC 1123 subdomain/,
        ),
      }),
    )
  })

  it('refuses a field given twice with reason Invalid, naming the field and its line', () => {
    const text = 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 1\n  replicas: 3\n'
    expect(() => parseManifests(text, 'app/web.yaml')).toThrow(
      expect.objectContaining({ reason: 'Invalid', message: 'app/web.yaml:6:3: duplicate field "replicas": a field may appear once per object' }),
    )
  })
})

describe('checkObjects', () => {
  const cm = (name: string, ns?: string): ReturnType<typeof parseManifests>[number] => ({
    object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, ...(ns ? { namespace: ns } : {}) } },
    source: `${name}.yaml#1`,
  })

  it('finds duplicates by group, kind, namespace and name, whatever the API version', () => {
    const hpa = (v: string): ReturnType<typeof parseManifests>[number] => ({
      object: { apiVersion: `autoscaling/${v}`, kind: 'HorizontalPodAutoscaler', metadata: { name: 'h' } },
      source: v,
    })
    expect(() => checkObjects([cm('a', 'x'), cm('a', 'y'), cm('b')])).not.toThrow()
    expect(() => checkObjects([hpa('v1'), hpa('v2')])).toThrow(
      'v2: HorizontalPodAutoscaler h is defined twice (first at v1); keep one',
    )
  })

  it('refuses Secrets with data or stringData unless allowed; an empty Secret is fine', () => {
    const secret = (fields: object): ReturnType<typeof parseManifests>[number] => ({
      object: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, ...fields },
      source: 's.yaml#1',
    })
    expect(() => checkObjects([secret({ data: { k: 'dg==' } })])).toThrow(/Secret s carries literal data/)
    expect(() => checkObjects([secret({ stringData: { k: 'v' } })])).toThrow(/--allow-secrets/)
    expect(() => checkObjects([secret({ data: {} })])).not.toThrow()
    expect(() => checkObjects([secret({ data: { k: 'dg==' } })], { allowSecrets: true })).not.toThrow()
  })
})
