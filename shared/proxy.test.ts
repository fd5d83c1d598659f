import { describe, expect, it } from 'vitest'
import { proxyFor } from './proxy.ts'

const env = (extra: Record<string, string>): Record<string, string> => ({
  HTTPS_PROXY: 'http://proxy.example:3128',
  HTTP_PROXY: 'http://plain-proxy.example:3128',
  ...extra,
})
const via = (url: string, extra: Record<string, string> = {}): string | undefined =>
  proxyFor(new URL(url), env(extra))?.host

describe('proxyFor: the environment read as Go (kubectl, oras) reads it', () => {
  it('HTTPS_PROXY for https, HTTP_PROXY for http; upper case first, empty is unset; a bare host:port is http://', () => {
    expect(via('https://api.example:6443')).toBe('proxy.example:3128')
    expect(via('http://hooks.example/x')).toBe('plain-proxy.example:3128')
    expect(via('https://api.example', { https_proxy: 'lower.example:8080' })).toBe('proxy.example:3128')
    expect(via('https://api.example', { HTTPS_PROXY: '', https_proxy: 'lower.example:8080' })).toBe('lower.example:8080')
    expect(via('https://api.example', { NO_PROXY: '', no_proxy: 'api.example' })).toBeUndefined()
    expect(proxyFor(new URL('https://api.example'), {})).toBeUndefined()
  })

  it('never for loopback', () => {
    for (const url of ['https://localhost:6443', 'https://127.0.0.1:6443', 'https://127.8.0.1', 'https://[::1]:443']) {
      expect(via(url)).toBeUndefined()
    }
  })

  it('NO_PROXY: *, hosts, suffixes with or without a dot, IPs, CIDRs, ports', () => {
    expect(via('https://api.example', { NO_PROXY: '*' })).toBeUndefined()
    expect(via('https://api.example', { NO_PROXY: 'other, api.example' })).toBeUndefined()
    expect(via('https://a.b.example', { NO_PROXY: '.example' })).toBeUndefined()
    expect(via('https://a.b.example', { NO_PROXY: 'b.example' })).toBeUndefined()
    expect(via('https://notb.example', { NO_PROXY: 'b.example' })).toBe('proxy.example:3128')
    expect(via('https://10.1.2.3', { NO_PROXY: '10.0.0.0/8' })).toBeUndefined()
    expect(via('https://11.1.2.3', { NO_PROXY: '10.0.0.0/8' })).toBe('proxy.example:3128')
    expect(via('https://10.1.2.3', { NO_PROXY: '10.1.2.3' })).toBeUndefined()
    expect(via('https://api.example:6443', { NO_PROXY: 'api.example:443' })).toBe('proxy.example:3128')
    expect(via('https://api.example:6443', { NO_PROXY: 'api.example:6443' })).toBeUndefined()
  })

  it('refuses a proxy scheme it cannot speak, saying which', () => {
    expect(() => via('https://api.example', { HTTPS_PROXY: 'socks5://p:1080' })).toThrow(/socks5.*not supported/)
  })
})
