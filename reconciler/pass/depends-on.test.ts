import { describe, expect, it } from 'vitest'
import type { Environment } from '../../api/environment.ts'
import type { Pass } from './pass.ts'
import { dependencyWait } from './depends-on.ts'

type Peer = { dependsOn?: string[]; ready?: 'True' | 'False'; generation?: number; observed?: number }

/** A pass of `name` among `peers`, all read from the controller's cache (no apiserver). */
function passAmong(name: string, peers: Record<string, Peer>): Pass {
  const env = (n: string, p: Peer): Environment => ({
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Environment',
    metadata: { name: n, namespace: 'shop', generation: p.generation ?? 1 },
    spec: { dependsOn: (p.dependsOn ?? []).map((d) => ({ name: d })) },
    status: {
      observedGeneration: p.observed ?? p.generation ?? 1,
      ...(p.ready ? { conditions: [{ type: 'Ready', status: p.ready, reason: p.ready === 'True' ? 'Succeeded' : 'Progressing', message: 'm', lastTransitionTime: 't' }] } : {}),
    },
  })
  const all = new Map(Object.entries(peers).map(([n, p]) => [n, env(n, p)]))
  const ctx = {
    peer: (_namespace: string, n: string) => all.get(n),
    kube: { get: () => Promise.resolve(undefined) },
  }
  return { env: all.get(name), ctx } as unknown as Pass
}

const wait = (name: string, peers: Record<string, Peer>, newVersion = true): Promise<unknown> =>
  dependencyWait(passAmong(name, peers), peers[name]?.dependsOn ?? [], newVersion)

describe('dependsOn', () => {
  it('a new version waits for each dependency to be Ready on its current generation', async () => {
    expect(await wait('app', { app: { dependsOn: ['platform'] }, platform: { ready: 'True' } })).toBeUndefined()
    const progressing = await wait('app', { app: { dependsOn: ['platform'] }, platform: { ready: 'False' } })
    expect(progressing).toMatchObject({ reason: 'DependencyNotReady' })
    expect((progressing as Error).message).toBe(
      'dependsOn: shop/platform is not Ready (Progressing: m); nothing of the new version is applied until it is Ready',
    )
    const changed = await wait('app', { app: { dependsOn: ['platform'] }, platform: { ready: 'True', generation: 3, observed: 2 } })
    expect((changed as Error).message).toContain('has a change not handled yet')
    expect((await wait('app', { app: { dependsOn: ['db'] } }) as Error).message).toContain('shop/db does not exist')
  })

  it('what already runs is not held', async () => {
    expect(await wait('app', { app: { dependsOn: ['platform'] }, platform: { ready: 'False' } }, false)).toBeUndefined()
  })

  it('a cycle is refused, named, whatever is pinned; a diamond is no cycle', async () => {
    await expect(wait('a', { a: { dependsOn: ['a'] } }, false)).rejects.toThrow('spec.dependsOn: a → a is a cycle')
    const three = { a: { dependsOn: ['b'] }, b: { dependsOn: ['c'] }, c: { dependsOn: ['a'] } }
    await expect(wait('a', three, false)).rejects.toMatchObject({ reason: 'InvalidSpec', message: expect.stringContaining('a → b → c → a') })
    const diamond = {
      app: { dependsOn: ['left', 'right'] },
      left: { dependsOn: ['base'], ready: 'True' as const },
      right: { dependsOn: ['base'], ready: 'True' as const },
      base: { ready: 'True' as const },
    }
    expect(await wait('app', diamond)).toBeUndefined()
  })
})
