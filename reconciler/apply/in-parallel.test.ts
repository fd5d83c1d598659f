import { describe, expect, it } from 'vitest'
import { gate } from '../../test/support/gate.ts'
import { inParallel } from './apply.ts'

describe('inParallel: a bounded pool, not batches', () => {
  it('keeps at most 8 in flight, starts the next as soon as one ends, and gives results in item order', async () => {
    const gates = Array.from({ length: 20 }, gate)
    const started: number[] = []
    const running = inParallel([...gates.keys()], async (i) => {
      started.push(i)
      await gates[i]?.promise
      return i * 10
    })
    await Promise.resolve()
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    // One slow item does not hold the others back: ending item 3 starts item 8 while 0–2 and 4–7 still run.
    gates[3]?.open()
    await new Promise((r) => setImmediate(r))
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8])
    for (const g of gates) g.open()
    expect(await running).toEqual([...gates.keys()].map((i) => i * 10))
  })

  it('rejects with the first failure and starts no further item', async () => {
    const started: number[] = []
    const failing = inParallel([...Array(30).keys()], async (i) => {
      started.push(i)
      await new Promise((r) => setImmediate(r))
      if (i === 2) throw new Error('item 2 refused')
      return i
    })
    await expect(failing).rejects.toThrow('item 2 refused')
    await new Promise((r) => setImmediate(r))
    expect(started.length).toBeLessThan(30)
  })

  it('an empty list is an empty result', async () => {
    expect(await inParallel([], () => Promise.resolve(1))).toEqual([])
  })
})
