/**
 * HTTPS_PROXY / HTTP_PROXY / NO_PROXY, read as Go's net/http reads them (kubectl, oras, helm):
 * HTTPS_PROXY for https URLs, HTTP_PROXY for http ones (the upper-case name first, then the
 * lower-case one; an empty value counts as unset, as in Go), and no
 * proxy for a host NO_PROXY names (`*`, a host, `.suffix` or `suffix` matching subdomains too,
 * an IP, a CIDR, each with an optional port) nor for loopback (`localhost`, 127.0.0.0/8, ::1).
 * oras is Go and reads them itself; this module makes berth's own requests — the apiserver and
 * notification receivers — do the same.
 *
 * An https request goes through an HTTP CONNECT tunnel; an http one is sent to the proxy in
 * absolute form. TLS is still end to end: the proxy sees only the host and port.
 */
import { Agent as HttpAgent, type OutgoingHttpHeaders, request as httpRequest } from 'node:http'
import { Agent as HttpsAgent, type AgentOptions, type RequestOptions } from 'node:https'
import { BlockList, isIP } from 'node:net'
import type { Duplex } from 'node:stream'
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls'
import { UsageError } from './errors.ts'

type Env = Readonly<Record<string, string | undefined>>

/** The proxy a request to `url` goes through, or undefined for a direct connection. */
export function proxyFor(url: URL, env: Env = process.env): URL | undefined {
  const https = url.protocol === 'https:'
  const raw = https ? first(env.HTTPS_PROXY, env.https_proxy) : first(env.HTTP_PROXY, env.http_proxy)
  if (!raw) return undefined
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase()
  if (isLoopback(host) || bypassed(host, url.port || (https ? '443' : '80'), first(env.NO_PROXY, env.no_proxy))) {
    return undefined
  }
  // Go takes `host:port` without a scheme as http://host:port.
  const proxy = new URL(raw.includes('://') ? raw : `http://${raw}`)
  if (proxy.protocol !== 'http:') {
    throw new UsageError(
      'UnsupportedProxy',
      `proxy ${proxy.protocol}// is not supported: berth speaks to an http:// proxy (HTTPS_PROXY=http://host:port)`,
    )
  }
  return proxy
}

// Go's getEnvAny: the first name set to something non-empty.
function first(...values: Array<string | undefined>): string {
  return values.find((v) => v) ?? ''
}

function isLoopback(host: string): boolean {
  if (host === 'localhost' || host.endsWith('.localhost')) return true
  if (isIP(host) === 4) return host.startsWith('127.')
  return host === '::1'
}

function bypassed(host: string, port: string, noProxy: string): boolean {
  for (const raw of noProxy.split(',')) {
    let entry = raw.trim().toLowerCase()
    if (!entry) continue
    if (entry === '*') return true
    if (entry.includes('/')) {
      if (inCidr(host, entry)) return true
      continue
    }
    // An entry may carry a port (`host:8443`, `[::1]:443`): then only that port is bypassed.
    const withPort = /^(\[.*\]|[^:]+):(\d+)$/.exec(entry)
    if (withPort) {
      if (withPort[2] !== port) continue
      entry = withPort[1] ?? entry
    }
    entry = entry.replace(/^\[|\]$/g, '')
    if (isIP(entry)) {
      if (entry === host) return true
      continue
    }
    const suffix = entry.startsWith('.') ? entry : `.${entry}`
    if (host === entry.replace(/^\./, '') || host.endsWith(suffix)) return true
  }
  return false
}

function inCidr(host: string, cidr: string): boolean {
  const family = isIP(host)
  const [network = '', bits = ''] = cidr.split('/')
  if (!family || isIP(network) !== family) return false
  const list = new BlockList()
  list.addSubnet(network, Number(bits), family === 4 ? 'ipv4' : 'ipv6')
  return list.check(host, family === 4 ? 'ipv4' : 'ipv6')
}

/** The Proxy-Authorization header for a proxy URL with user:password, as Go sends it. */
function proxyAuthorization(proxy: URL): OutgoingHttpHeaders {
  if (!proxy.username) return {}
  const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`
  return { 'Proxy-Authorization': `Basic ${Buffer.from(credentials).toString('base64')}` }
}

/** An https Agent whose connections are CONNECT tunnels through `proxy`, TLS inside them. */
class TunnelAgent extends HttpsAgent {
  private readonly proxy: URL

  constructor(proxy: URL, options: AgentOptions) {
    super(options)
    this.proxy = proxy
  }

  // Node's Agent accepts a callback for a connection made asynchronously (returning undefined).
  override createConnection(
    given: RequestOptions,
    callback?: (error: Error | null, stream: Duplex) => void,
  ): undefined {
    const options = given as ConnectionOptions & { host?: string; port?: number; servername?: string }
    const done = (error: Error | null, socket?: Duplex): void => callback?.(error, socket as Duplex)
    const target = `${options.host?.includes(':') ? `[${options.host}]` : (options.host ?? '')}:${options.port ?? 443}`
    const connect = httpRequest({
      host: this.proxy.hostname.replace(/^\[|\]$/g, ''),
      port: Number(this.proxy.port || 80),
      method: 'CONNECT',
      path: target,
      headers: { Host: target, ...proxyAuthorization(this.proxy) },
    })
    connect.once('connect', (answer, socket) => {
      if (answer.statusCode !== 200) {
        socket.destroy()
        done(new Error(`the proxy ${this.proxy.host} refused CONNECT ${target}: HTTP ${answer.statusCode ?? 0}`))
        return
      }
      const servername = options.servername ?? (isIP(options.host ?? '') ? undefined : options.host)
      done(null, tlsConnect({ ...options, socket, ...(servername ? { servername } : {}) }))
    })
    connect.once('error', (error) => done(new Error(`the proxy ${this.proxy.host}: ${error.message}`)))
    connect.end()
    return undefined
  }
}

/**
 * The URL and options that send a request for `url` the way the environment says: unchanged
 * when no proxy applies; for https, the same request over a tunnel agent; for http, the request
 * sent to the proxy with the absolute URL as its path.
 */
export function throughProxy(
  url: URL,
  options: RequestOptions,
  env: Env = process.env,
): { url: URL; options: RequestOptions; proxy?: URL } {
  const proxy = proxyFor(url, env)
  if (!proxy) return { url, options }
  if (url.protocol === 'https:') {
    // One agent per request: its TLS options (CA, client certificate) are the request's own.
    const { ca, cert, key, rejectUnauthorized, servername } = options
    const tls = { ca, cert, key, rejectUnauthorized, servername }
    const defined = Object.fromEntries(Object.entries(tls).filter(([, v]) => v !== undefined)) as AgentOptions
    return { url, proxy, options: { ...options, agent: new TunnelAgent(proxy, { ...defined, keepAlive: false }) } }
  }
  const given = options.headers as OutgoingHttpHeaders | undefined
  const headers = { ...given, Host: url.host, ...proxyAuthorization(proxy) }
  return {
    proxy,
    url: new URL(proxy.origin),
    options: { ...options, headers, path: url.href, agent: new HttpAgent({ keepAlive: false }) },
  }
}
