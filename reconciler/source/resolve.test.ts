import { describe, expect, it } from 'vitest'
import { diffPaths } from '../apply/drift.ts'
import { chooseTag } from './resolve.ts'

describe('chooseTag', () => {
  const tags = ['1.0.0', '1.1.0', '1.2.0-rc.1', '2.0.0', 'latest', 'sha256-abc.sig', '1.1.5']
  it.each([
    ['1.1.0', '1.1.0'],
    ['v1.1.0', '1.1.0'],
    ['~1.1', '1.1.5'],
    ['^1', '1.1.5'],
    ['>=1.0.0 <2', '1.1.5'],
    ['>=1.2.0-rc.0 <2', '1.2.0-rc.1'],
    ['*', '2.0.0'],
    ['3.0.0', undefined],
    ['~3', undefined],
  ])('%s → %s', (pin, tag) => {
    expect(chooseTag(pin, tags)).toBe(tag)
  })
})

describe('diffPaths', () => {
  it('names the differing leaves', () => {
    expect(
      diffPaths(
        { data: { a: '1', b: '2' }, spec: { replicas: 2, ports: [80] } },
        { data: { a: '1', b: '3' }, spec: { replicas: 2, ports: [81] } },
        '',
      ),
    ).toEqual(['data.b', 'spec.ports'])
    expect(diffPaths({ a: 1 }, { a: 1 }, '')).toEqual([])
    expect(diffPaths({ a: 1 }, { a: 1, b: 2 }, '')).toEqual(['b'])
  })
})
