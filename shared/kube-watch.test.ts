/**
 * The list+watch loop of Kube.watch, against a loopback server that speaks the apiserver's
 * watch protocol and plays a script a real apiserver cannot be made to play on demand: a
 * bookmark, 410 Gone in the stream, an ERROR event, and a deletion that happens while no watch
 * is open (seen only by comparing the next list with what was known). Also: lists are paged.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { Kube } from './kube.ts'

type Obj = { metadata: { name: string; namespace: string; resourceVersion: string } }
const cm = (name: string, resourceVersion: string): Obj => ({ metadata: { name, namespace: 'ns', resourceVersion } })

/** One scripted answer per request to the ConfigMap collection, in order; each request is recorded. */
type Step = { list: Obj[]; rv: string; continue?: string } | { events: object[] }

async function fakeApiserver(steps: Step[]): Promise<{ kube: Kube; requests: URL[]; close: () => Promise<void> }> {
  const requests: URL[] = []
  const held: ServerResponse[] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://fake')
    if (url.pathname === '/api/v1') {
      res.end(JSON.stringify({ resources: [{ name: 'configmaps', kind: 'ConfigMap', namespaced: true }] }))
      return
    }
    requests.push(url)
    const step = steps.shift()
    if (!step) {
      held.push(res) // Nothing more to say: hold the watch open, as a quiet apiserver does.
      return
    }
    if ('list' in step) {
      res.end(JSON.stringify({ items: step.list, metadata: { resourceVersion: step.rv, continue: step.continue } }))
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    for (const event of step.events) res.write(`${JSON.stringify(event)}\n`)
    res.end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const kube = new Kube({ server: `http://127.0.0.1:${port}`, namespace: undefined, authorize: () => Promise.resolve() })
  return {
    kube,
    requests,
    close: async () => {
      for (const res of held) res.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

/** Resolves once `check` holds, re-checked on every event the watch hands over. */
function until(check: () => boolean): { poke: () => void; reached: Promise<void> } {
  let done: () => void = () => undefined
  const reached = new Promise<void>((resolve) => (done = resolve))
  return { poke: () => check() && done(), reached }
}

let cleanup: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const step of cleanup) await step()
  cleanup = []
})

describe('Kube.watch: the list+watch loop', () => {
  it('continues from a bookmark, relists on 410 Gone, and reports a deletion that happened across the gap', async () => {
    const events: string[] = []
    const server = await fakeApiserver([
      { list: [cm('a', '1'), cm('b', '1')], rv: '10' },
      // A watch that only bookmarks, then ends: the next one must start from the bookmark.
      { events: [{ type: 'BOOKMARK', object: { metadata: { resourceVersion: '20' } } }] },
      { events: [{ type: 'MODIFIED', object: cm('a', '21') }] },
      // Too old: the apiserver says 410 inside the stream. The loop lists again at once.
      { events: [{ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old' } }] },
      // Meanwhile b was deleted and c created; nobody saw those events.
      { list: [cm('a', '21'), cm('c', '30')], rv: '40' },
    ])
    const wait = until(() => events.includes('delete b') && events.includes('add c'))
    const errors: unknown[] = []
    const watching = await server.kube.watch<Obj>('v1', 'ConfigMap', {
      event: (type, o) => {
        events.push(`${type} ${o.metadata.name}`)
        wait.poke()
      },
      error: (e) => errors.push(e),
    }, { namespace: 'ns' })
    cleanup.push(() => watching.stop(), server.close)
    await wait.reached

    expect(events).toHaveLength(5)
    expect(events.slice(0, 3)).toEqual(['add a', 'add b', 'update a'])
    expect(new Set(events.slice(3))).toEqual(new Set(['add c', 'delete b']))
    const watches = server.requests.filter((u) => u.searchParams.get('watch') === '1')
    expect(watches.map((u) => u.searchParams.get('resourceVersion')).slice(0, 3)).toEqual(['10', '20', '21'])
    expect(watches.every((u) => u.searchParams.get('allowWatchBookmarks') === 'true')).toBe(true)
    // 410 is routine: relisted without telling the caller of an error.
    expect(errors).toEqual([])
  })

  it('an ERROR event other than 410 is reported to the caller, with the apiserver\'s words', async () => {
    const server = await fakeApiserver([
      { list: [cm('a', '1')], rv: '10' },
      { events: [{ type: 'ERROR', object: { kind: 'Status', code: 500, reason: 'InternalError', message: 'etcd hiccup' } }] },
    ])
    const failed = until(() => true)
    const errors: unknown[] = []
    const watching = await server.kube.watch<Obj>('v1', 'ConfigMap', {
      event: () => undefined,
      error: (e) => {
        errors.push(e)
        failed.poke()
      },
    }, { namespace: 'ns' })
    cleanup.push(() => watching.stop(), server.close)
    await failed.reached
    expect(errors[0]).toMatchObject({ code: 500, reason: 'InternalError', message: expect.stringContaining('etcd hiccup') })
  })

  it('lists in pages: limit, then continue tokens, until the last page', async () => {
    const server = await fakeApiserver([
      { list: [cm('a', '1')], rv: '10', continue: 'page-2' },
      { list: [cm('b', '2')], rv: '10', continue: 'page-3' },
      { list: [cm('c', '3')], rv: '10' },
    ])
    cleanup.push(server.close)
    const listed = await server.kube.listAt<Obj>('v1', 'ConfigMap', { namespace: 'ns', pageSize: 1 })
    expect(listed.items.map((o) => o.metadata.name)).toEqual(['a', 'b', 'c'])
    expect(listed.resourceVersion).toBe('10')
    expect(server.requests.map((u) => [u.searchParams.get('limit'), u.searchParams.get('continue')])).toEqual([
      ['1', null],
      ['1', 'page-2'],
      ['1', 'page-3'],
    ])
  })
})
