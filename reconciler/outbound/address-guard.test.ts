import type { LookupAddress } from 'node:dns'
import { describe, expect, it } from 'vitest'
import { post } from './http-post.ts'
import { AddressGuard, DeniedAddressError } from './address-guard.ts'

/** A resolver the test controls: what each name means, and how often it was asked. */
type Resolver = { resolve: (host: string) => Promise<LookupAddress[]>; asked: string[] }
function resolver(names: Record<string, string[]>): Resolver {
  const asked: string[] = []
  return {
    asked,
    resolve: (host) => {
      asked.push(host)
      return Promise.resolve((names[host] ?? []).map((address) => ({ address, family: address.includes(':') ? 6 : 4 })))
    },
  }
}

describe('AddressGuard: receivers cannot be pointed inward', () => {
  const names = {
    'metadata.example': ['169.254.169.254'],
    'aws-v6.example': ['fd00:ec2::254'],
    'link-v6.example': ['fe80::1'],
    'mapped.example': ['::ffff:169.254.169.254'],
    'rebind.example': ['203.0.113.10', '169.254.169.254'],
    'pods.example': ['10.244.1.7'],
    'fine.example': ['203.0.113.10'],
  }

  it('refuses names that resolve to link-local or cloud metadata addresses, on the resolved address', async () => {
    const guard = new AddressGuard([], resolver(names).resolve)
    for (const host of ['metadata.example', 'aws-v6.example', 'link-v6.example', 'mapped.example', 'rebind.example']) {
      await expect(guard.addresses(host)).rejects.toBeInstanceOf(DeniedAddressError)
    }
    await expect(guard.addresses('metadata.example')).rejects.toThrow(
      /metadata\.example resolves to 169\.254\.169\.254, which is in a denied range .*nothing was sent/,
    )
    expect(await guard.addresses('fine.example')).toEqual([{ address: '203.0.113.10', family: 4 }])
  })

  it('refuses literal addresses without asking any resolver', async () => {
    const { resolve, asked } = resolver({})
    const guard = new AddressGuard([], resolve)
    await expect(guard.addresses('169.254.169.254')).rejects.toThrow(/169\.254\.169\.254 is in a denied range/)
    await expect(guard.addresses('[fd00:ec2::254]')).rejects.toBeInstanceOf(DeniedAddressError)
    expect(asked).toEqual([])
  })

  it('--deny-receiver-cidr adds ranges (the cluster\'s pods and services)', async () => {
    const guard = new AddressGuard(['10.0.0.0/8'], resolver(names).resolve)
    await expect(guard.addresses('pods.example')).rejects.toThrow(/10\.244\.1\.7/)
    expect(() => new AddressGuard(['not-a-cidr'])).toThrow(/not a CIDR/)
  })

  it('post() asks the resolver at every try and connects only to the address it checked', async () => {
    const { resolve, asked } = resolver({ 'receiver.example': ['169.254.169.254'] })
    const guard = new AddressGuard([], resolve)
    const request = { url: 'http://receiver.example:1/hook', headers: {}, body: '{}' }
    await expect(post(request, { timeoutMs: 1000, guard })).rejects.toBeInstanceOf(DeniedAddressError)
    await expect(post(request, { timeoutMs: 1000, guard })).rejects.toBeInstanceOf(DeniedAddressError)
    expect(asked).toEqual(['receiver.example', 'receiver.example'])
  })
})
