import { describe, expect, it } from 'vitest'
import { objectFileName, releaseTag } from './artifact.ts'

describe('releaseTag', () => {
  it.each([
    ['1.2.3', '1.2.3'],
    ['v1.2.3', '1.2.3'],
    ['1.3.0-rc.1', '1.3.0-rc.1'],
    [' v2.0.0-alpha.10 ', '2.0.0-alpha.10'],
  ])('%s → tag %s', (input, tag) => {
    expect(releaseTag(input)).toEqual({ tag })
  })

  it.each([['1.2'], ['01.2.3'], ['latest'], ['1.2.3-'], ['1.2.3+build.5'], ['v1.2.3+sha.abc']])(
    'refuses %s',
    (input) => {
      expect(releaseTag(input)).toHaveProperty('problem')
    },
  )
})

describe('objectFileName', () => {
  it('names namespaced, cluster-scoped and grouped objects apart', () => {
    expect(
      objectFileName({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'shop' } }),
    ).toBe('shop_deployment.apps_web.yaml')
    expect(objectFileName({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } })).toBe(
      '_cluster_namespace_shop.yaml',
    )
  })
})
