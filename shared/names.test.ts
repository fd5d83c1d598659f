import { describe, expect, it } from 'vitest'
import { pathSegment } from './kube.ts'
import { objectNameProblems } from './names.ts'

const cm = (name: string, namespace?: string): Parameters<typeof objectNameProblems>[0] => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, ...(namespace === undefined ? {} : { namespace }) },
})

describe('names by Kubernetes rules', () => {
  it.each(['../../x', '..', '.', '/', 'Upper', 'a_b', 'a'.repeat(254), '-a', 'a-', 'x\ny'])(
    'refuses the ConfigMap name %j, naming the field and the rule',
    (name) => {
      const [problem] = objectNameProblems(cm(name))
      expect(problem).toMatch(/^metadata\.name .* is not valid: it must be a lowercase RFC 1123 subdomain/)
    },
  )

  it('accepts subdomains for most kinds, and labels only where Kubernetes asks for them', () => {
    expect(objectNameProblems(cm('app.config-1'))).toEqual([])
    expect(objectNameProblems({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'a.b' } })[0]).toContain(
      'RFC 1123 label',
    )
    expect(objectNameProblems({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a'.repeat(64) } })).toHaveLength(1)
  })

  it('lets RBAC kinds use path-segment names (system:…), never . or ..', () => {
    const role = (name: string): Parameters<typeof objectNameProblems>[0] => ({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name },
    })
    expect(objectNameProblems(role('system:aggregate-to-view'))).toEqual([])
    expect(objectNameProblems(role('..'))).toHaveLength(1)
    expect(objectNameProblems(role('a/b'))).toHaveLength(1)
  })

  it('checks the namespace as a label', () => {
    expect(objectNameProblems(cm('ok', 'Team-A'))).toEqual([
      expect.stringMatching(/^metadata\.namespace "Team-A" is not valid: it must be a lowercase RFC 1123 label/),
    ])
  })
})

describe('pathSegment: the one way data enters an API path', () => {
  it.each(['', '.', '..', 'a/b', '50%', 'a\nb'])('refuses %j', (value) => {
    expect(() => pathSegment(value)).toThrow(expect.objectContaining({ reason: 'InvalidName', exitCode: 3 }))
  })

  it('encodes what it can place', () => {
    expect(pathSegment('system:view')).toBe('system%3Aview')
    expect(pathSegment('web')).toBe('web')
  })
})
