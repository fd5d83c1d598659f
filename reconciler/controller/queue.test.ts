import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { KeyedQueue } from './queue.ts'

describe('KeyedQueue', () => {
  it('never runs one key twice at once, and runs it again when added meanwhile', async () => {
    const log: string[] = []
    let active = 0
    let maxActive = 0
    const queue = new KeyedQueue(async (key) => {
      active++
      maxActive = Math.max(maxActive, active)
      log.push(`start ${key}`)
      await sleep(30)
      log.push(`end ${key}`)
      active--
      return {}
    }, { concurrency: 4 })
    queue.add('a')
    queue.add('a')
    await sleep(5)
    queue.add('a')
    await sleep(100)
    expect(log).toEqual(['start a', 'end a', 'start a', 'end a'])
    expect(maxActive).toBe(1)
  })

  it('bounds concurrency across keys', async () => {
    let active = 0
    let maxActive = 0
    const queue = new KeyedQueue(async () => {
      active++
      maxActive = Math.max(maxActive, active)
      await sleep(20)
      active--
      return {}
    }, { concurrency: 2 })
    for (const key of ['a', 'b', 'c', 'd', 'e']) queue.add(key)
    await sleep(120)
    expect(maxActive).toBe(2)
  })

  it('retries failures with growing backoff, and honours requeueAfterMs', async () => {
    const times: number[] = []
    const started = Date.now()
    const queue = new KeyedQueue(() => {
      times.push(Date.now() - started)
      return times.length < 3 ? Promise.reject(new Error('boom')) : Promise.resolve({})
    }, { concurrency: 1, baseBackoffMs: 20, jitter: 0 })
    queue.add('k')
    await sleep(150)
    expect(times).toHaveLength(3)
    expect((times[2] ?? 0) - (times[1] ?? 0)).toBeGreaterThanOrEqual(((times[1] ?? 0) - (times[0] ?? 0)) * 1.5)
    await queue.stop()
  })

  it('stop waits for the running pass and takes no more work', async () => {
    let finished = false
    const queue = new KeyedQueue(async () => {
      await sleep(40)
      finished = true
      return { requeueAfterMs: 1 }
    }, { concurrency: 1 })
    queue.add('k')
    await sleep(5)
    await queue.stop()
    expect(finished).toBe(true)
    queue.add('k')
  })
})
