import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { OrasError } from '../../shared/oras.ts'
import { RegistryGate } from './registry-gate.ts'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('RegistryGate: one registry cannot take every slot', () => {
  it('lets perHost runs in per host, makes the next wait a moment, then gives up with RegistryBusy', async () => {
    const counts: Array<[string, number]> = []
    const gate = new RegistryGate({ perHost: 2, inFlight: (host, n) => counts.push([host, n]) })
    const turn = gate.gateFor('slow.example/app')
    const first = await turn()
    await turn()
    // Another host is not affected at all.
    const elsewhere = await gate.gateFor('fine.example/app')()
    elsewhere()
    const third = turn()
    const refused = expect(third).rejects.toMatchObject({ reason: 'RegistryBusy', retryAfterMs: 5_000 })
    await vi.advanceTimersByTimeAsync(1_000)
    await refused
    // A turn freed in time is taken by the one waiting.
    const fourth = turn()
    first()
    const release = await fourth
    release()
    expect(counts.filter(([host]) => host === 'slow.example').map(([, n]) => n)).toEqual([1, 2, 1, 2, 1])
  })

  it('a host that timed out is not asked again for a while (5 s, doubling), failing at once with its reason', async () => {
    const failed: string[] = []
    const gate = new RegistryGate({ perHost: 2, failed: (host, reason) => failed.push(`${host} ${reason}`) })
    const turn = gate.gateFor('frozen.example/app')
    const timeout = new OrasError('timeout', 'cannot fetch the manifest of frozen.example/app:1.0.0: no answer within 120 s')
    ;(await turn())(timeout)
    await expect(turn()).rejects.toMatchObject({
      reason: 'Timeout',
      message: expect.stringMatching(/^frozen\.example did not answer lately \(cannot fetch .*\); not asked again for 5 s$/),
    })
    await vi.advanceTimersByTimeAsync(5_000)
    ;(await turn())(timeout)
    await vi.advanceTimersByTimeAsync(5_000)
    await expect(turn()).rejects.toMatchObject({ message: expect.stringContaining('not asked again for 5 s') })
    await vi.advanceTimersByTimeAsync(5_000)
    // Answered again: the breaker closes.
    ;(await turn())()
    ;(await turn())()
    expect(failed).toEqual(['frozen.example Timeout', 'frozen.example Timeout'])
  })
})
