import { describe, expect, it } from 'vitest'
import { writeYaml } from './yaml-writer.ts'
import { diffArtifacts, formatDiff, unchanged, unifiedDiff } from './artifact-diff.ts'

const files = (entries: Record<string, object[]>): Map<string, Buffer> =>
  new Map(
    Object.entries(entries).map(([path, docs]) => [path, Buffer.from(docs.map((d) => writeYaml(d)).join('---\n'))]),
  )
const cm = (name: string, data: Record<string, string>, namespace?: string): object => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, ...(namespace ? { namespace } : {}) },
  data,
})

describe('diffArtifacts', () => {
  it('per environment: added, removed, changed with a unified diff; identical environments have no changes', () => {
    const from = {
      version: '1.0.0',
      files: files({ 'dev/a.yaml': [cm('a', { v: '1' }), cm('b', { v: '1' })], 'prod/a.yaml': [cm('a', { v: '1' })] }),
    }
    const to = {
      version: '1.1.0',
      files: files({ 'dev/a.yaml': [cm('a', { v: '2' }), cm('c', { v: '1' })], 'prod/a.yaml': [cm('a', { v: '1' })] }),
    }
    const diffs = diffArtifacts(from, to)
    expect(diffs.map((d) => d.environment)).toEqual(['dev', 'prod'])
    expect(diffs[0]).toMatchObject({ added: ['ConfigMap c'], removed: ['ConfigMap b'] })
    expect(diffs[0]?.changed).toEqual([
      {
        object: 'ConfigMap a',
        diff: expect.stringMatching(/^--- 1\.0\.0\n\+\+\+ 1\.1\.0\n@@ .* @@\n[^]*- {2}v: "1"\n\+ {2}v: "2"/),
      },
    ])
    expect(unchanged([diffs[1] ?? { environment: '', added: [], removed: [], changed: [] }])).toBe(true)
    expect(formatDiff(diffs)).toContain('prod: no changes')
  })

  it('an object moved to another file of the same environment is not a change', () => {
    const from = { version: '1', files: files({ 'dev/a.yaml': [cm('a', { v: '1' })] }) }
    const to = { version: '2', files: files({ 'dev/b.yaml': [cm('a', { v: '1' })] }) }
    expect(unchanged(diffArtifacts(from, to))).toBe(true)
  })

  it('never shows Secret values: a changed value on each side by version, an unchanged one as (unchanged)', () => {
    const secret = (data: Record<string, string>): object => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 's' },
      data,
    })
    const from = { version: '1', files: files({ 'dev/s.yaml': [secret({ a: 'b2xk', same: 'c2FtZQ==' })] }) }
    const to = {
      version: '2',
      files: files({ 'dev/s.yaml': [secret({ a: 'bmV3', same: 'c2FtZQ==', added: 'eA==' })] }),
    }
    const [dev] = diffArtifacts(from, to)
    const diff = dev?.changed[0]?.diff ?? ''
    expect(diff).toContain('-  a: "(value in 1)"')
    expect(diff).toContain('+  a: "(value in 2)"')
    expect(diff).toContain('+  added: "(value in 2)"')
    expect(diff).toContain('   same: "(unchanged)"')
    for (const value of ['b2xk', 'bmV3', 'c2FtZQ==', 'eA==']) expect(diff).not.toContain(value)
  })

  it('only: one environment, nested paths too; none when neither release has it', () => {
    const from = { version: '1', files: files({ 'envs/prod/a.yaml': [cm('a', { v: '1' })] }) }
    const to = { version: '2', files: files({ 'envs/prod/a.yaml': [cm('a', { v: '2' })] }) }
    expect(diffArtifacts(from, to, 'envs/prod').map((d) => d.changed.length)).toEqual([1])
    expect(diffArtifacts(from, to, 'staging')).toEqual([])
  })

  it('unifiedDiff is empty for equal texts', () => {
    expect(unifiedDiff('a\n', 'a\n', '1', '2')).toBe('')
  })
})
