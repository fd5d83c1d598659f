import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { gate } from '../../test/support/gate.ts'
import { KeyedQueue } from './queue.ts'

// Time is vitest's fake clock: every wait below is advanced by the test, never slept.
beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('KeyedQueue', () => {
  it('never runs one key twice at once, and runs it again when added meanwhile', async () => {
    const log: string[] = []
    const gates = [gate(), gate()]
    let run = 0
    const queue = new KeyedQueue(async (key) => {
      const mine = gates[run++]
      log.push(`start ${key}`)
      await mine?.promise
      log.push(`end ${key}`)
      return {}
    }, { concurrency: 4 })
    queue.add('a')
    queue.add('a')
    queue.add('a')
    await vi.advanceTimersByTimeAsync(0)
    expect(log).toEqual(['start a'])
    gates[0]?.open()
    await vi.advanceTimersByTimeAsync(0)
    expect(log).toEqual(['start a', 'end a', 'start a'])
    gates[1]?.open()
    await vi.advanceTimersByTimeAsync(0)
    expect(log).toEqual(['start a', 'end a', 'start a', 'end a'])
  })

  it('bounds concurrency across keys', async () => {
    const running = new Set<string>()
    let most = 0
    const release = new Map<string, () => void>()
    const queue = new KeyedQueue(async (key) => {
      running.add(key)
      most = Math.max(most, running.size)
      await new Promise<void>((resolve) => release.set(key, resolve))
      running.delete(key)
      return {}
    }, { concurrency: 2 })
    for (const key of ['a', 'b', 'c', 'd', 'e']) queue.add(key)
    await vi.advanceTimersByTimeAsync(0)
    expect([...running]).toEqual(['a', 'b'])
    release.get('a')?.()
    await vi.advanceTimersByTimeAsync(0)
    expect([...running]).toEqual(['b', 'c'])
    for (const key of ['b', 'c', 'd', 'e']) {
      release.get(key)?.()
      await vi.advanceTimersByTimeAsync(0)
    }
    expect(running.size).toBe(0)
    expect(most).toBe(2)
  })

  it('retries failures with exponential backoff (base, 2×, 4×), then honours requeueAfterMs', async () => {
    const at: number[] = []
    const started = Date.now()
    const queue = new KeyedQueue(() => {
      at.push(Date.now() - started)
      return at.length <= 3 ? Promise.reject(new Error('boom')) : Promise.resolve({ requeueAfterMs: 5_000 })
    }, { concurrency: 1, baseBackoffMs: 1_000, jitter: 0 })
    queue.add('k')
    await vi.advanceTimersByTimeAsync(0)
    await vi.advanceTimersByTimeAsync(1_000 + 2_000 + 4_000)
    expect(at).toEqual([0, 1_000, 3_000, 7_000])
    await vi.advanceTimersByTimeAsync(5_000)
    expect(at).toEqual([0, 1_000, 3_000, 7_000, 12_000])
    await queue.stop()
  })

  it('caps backoff at maxBackoffMs, and a success resets it', async () => {
    const at: number[] = []
    const started = Date.now()
    let fail = true
    const queue = new KeyedQueue(() => {
      at.push(Date.now() - started)
      return fail ? Promise.reject(new Error('boom')) : Promise.resolve({})
    }, { concurrency: 1, baseBackoffMs: 1_000, maxBackoffMs: 2_500, jitter: 0 })
    queue.add('k')
    await vi.advanceTimersByTimeAsync(1_000 + 2_000 + 2_500 + 2_500)
    expect(at).toEqual([0, 1_000, 3_000, 5_500, 8_000])
    fail = false
    await vi.advanceTimersByTimeAsync(2_500)
    fail = true
    queue.add('k')
    await vi.advanceTimersByTimeAsync(1_000)
    expect(at.slice(-2)).toEqual([10_500, 11_500])
    await queue.stop()
  })

  it('stop waits for the running pass, drops what was scheduled, and takes no more work', async () => {
    const work = gate()
    let runs = 0
    const queue = new KeyedQueue(async () => {
      runs++
      await work.promise
      return { requeueAfterMs: 1_000 }
    }, { concurrency: 1 })
    queue.add('k')
    queue.add('other', 500)
    await vi.advanceTimersByTimeAsync(0)
    let stopped = false
    const stopping = queue.stop().then(() => (stopped = true))
    await vi.advanceTimersByTimeAsync(0)
    expect(stopped).toBe(false)
    work.open()
    await stopping
    expect(stopped).toBe(true)
    // Neither the requeue the pass asked for, nor the scheduled key, nor a new key runs.
    queue.add('k')
    queue.add('new')
    await vi.advanceTimersByTimeAsync(10_000)
    expect(runs).toBe(1)
    expect(vi.getTimerCount()).toBe(0)
  })
})
