/**
 * One HTTP(S) POST with a deadline, for notifications and Prometheus queries: node:http(s) rather than fetch, because a
 * receiver's own CA (`ca.crt` in its Secret) must be trusted for that request alone.
 */
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { proxyFor, throughProxy } from '../../shared/proxy.ts'
import { type AddressGuard, pinnedLookup } from './address-guard.ts'
/** A request to send: where, its headers, its body. */
export type HttpRequest = { url: string; headers: Record<string, string>; body: string }
export type HttpAnswer = { status: number; body: string }

/** The most of an answer kept: a receiver's reply is only read for an id (GitHub) or a status. */
const MAX_ANSWER = 64 * 1024

/**
 * POST `req`; resolves with any HTTP answer (a redirect is an answer like any other: never
 * followed), rejects on a network failure or when `timeoutMs` passes. With a `guard`, the
 * receiver's addresses are checked first and the connection goes to exactly those.
 */
export async function post(
  req: HttpRequest,
  options: { ca?: string | undefined; timeoutMs: number; guard?: AddressGuard | undefined; signal?: AbortSignal },
): Promise<HttpAnswer> {
  const url = new URL(req.url)
  // Refused before anything is resolved or sent.
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new Error(`the address must be http:// or https://, not ${url.protocol}`)
  }
  const addresses = options.guard ? await options.guard.addresses(url.hostname) : undefined
  return await new Promise((resolve, reject) => {
    const body = Buffer.from(req.body)
    // HTTPS_PROXY / NO_PROXY as the apiserver's requests and oras honour them.
    const routed = throughProxy(url, {
      method: 'POST',
      headers: { ...req.headers, 'content-length': String(body.length) },
      ...(options.ca ? { ca: options.ca } : {}),
      // Direct: to exactly the addresses checked. Through a proxy, the proxy connects (and resolves) itself.
      ...(addresses && !proxyFor(url) ? { lookup: pinnedLookup(addresses) } : {}),
    })
    const outgoing = (routed.url.protocol === 'https:' ? httpsRequest : httpRequest)(routed.url, routed.options)
    const timer = setTimeout(() => {
      outgoing.destroy(new Error(`no answer within ${options.timeoutMs / 1000} s`))
    }, options.timeoutMs)
    // Cancelled (shutdown, or a new pin while a health check waits): the request ends now, whatever it waits for.
    const signal = options.signal
    const cancel = (): void => {
      outgoing.destroy(new Error('cancelled', { cause: signal?.reason }))
    }
    if (signal?.aborted) cancel()
    signal?.addEventListener('abort', cancel, { once: true })
    outgoing.on('close', () => signal?.removeEventListener('abort', cancel))
    outgoing.on('response', (answer) => {
      const chunks: Buffer[] = []
      let size = 0
      answer.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size <= MAX_ANSWER) {
          chunks.push(chunk)
          return
        }
        // Read no further than the bound: what was kept is the answer.
        clearTimeout(timer)
        answer.destroy()
        resolve({ status: answer.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') })
      })
      answer.on('end', () => {
        clearTimeout(timer)
        resolve({ status: answer.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') })
      })
      answer.on('error', (error) => {
        clearTimeout(timer)
        reject(error)
      })
    })
    outgoing.on('error', (error) => {
      clearTimeout(timer)
      reject(routed.proxy ? new Error(`through the proxy ${routed.proxy.host}: ${error.message}`, { cause: error }) : error)
    })
    outgoing.end(body)
  })
}
