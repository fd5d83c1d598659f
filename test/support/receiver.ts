/**
 * A notification receiver for tests: a real HTTP(S) server on loopback that records every
 * request and answers as told (a status per request in turn, then 200; or never, to hang).
 */
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttps } from 'node:https'
import type { AddressInfo } from 'node:net'

export type Received = { method: string; path: string; headers: IncomingMessage['headers']; body: unknown }

export type Receiver = {
  /** `http(s)://127.0.0.1:<port>` */
  url: string
  received: Received[]
  /** Answer the next requests with these statuses, in turn; after them 200. */
  answer: (...statuses: number[]) => void
  /** Never answer (until closed). */
  hang: () => void
  /** Body of a 2xx answer to the request at `path` (GitHub's deployment id). */
  respond: (path: string, body: object) => void
  close: () => Promise<void>
}

export async function startReceiver(tls?: { cert: string; key: string }): Promise<Receiver> {
  const received: Received[] = []
  const statuses: number[] = []
  const bodies = new Map<string, object>()
  let hanging = false
  const held: ServerResponse[] = []
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      let body: unknown = text
      try {
        body = JSON.parse(text)
      } catch {
        // Kept as text.
      }
      received.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body })
      if (hanging) {
        held.push(res)
        return
      }
      const status = statuses.shift() ?? 200
      const answer = bodies.get(req.url ?? '') ?? {}
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(answer))
    })
  }
  const server: Server = tls ? createHttps(tls, handle) : createHttp(handle)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    received,
    answer: (...s) => statuses.push(...s),
    hang: () => {
      hanging = true
    },
    respond: (path, body) => bodies.set(path, body),
    close: async () => {
      for (const res of held) res.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
