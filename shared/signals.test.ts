import { spawn } from 'node:child_process'
import { describe, expect, it } from 'vitest'

// A process that waits for a shutdown signal while execa runs a subprocess (as the reconciler
// does while oras pulls), then shuts down cleanly.
const script = (signals: string): string => `
  import { execa } from 'execa'
  import { firstSignal } from ${JSON.stringify(signals)}
  // Listening first, as the reconciler does: signal-exit's listener comes after ours.
  const signalled = firstSignal()
  const child = execa('sleep', ['30'], { reject: false })
  await new Promise((resolve) => child.once('spawn', resolve))
  console.log('ready')
  const signal = await signalled
  child.kill()
  await child
  console.log('stopped on', signal)
`

function run(): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> {
  const child = spawn(
    process.execPath,
    ['--input-type=module', '-e', script(new URL('./signals.ts', import.meta.url).href)],
    { cwd: new URL('..', import.meta.url), stdio: ['ignore', 'pipe', 'inherit'] },
  )
  let out = ''
  return new Promise((resolve) => {
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      // Signalled once it says it listens and its subprocess runs: no guess at how long that takes.
      if (!out.includes('ready') && (out + c).includes('ready')) child.kill('SIGTERM')
      out += c
    })
    child.once('exit', (code, signal) => {
      resolve({ code, signal, out })
    })
  })
}

describe('firstSignal', () => {
  it('shuts down cleanly on SIGTERM while an execa subprocess runs (signal-exit does not re-raise it)', async () => {
    const result = await run()
    expect(result.signal).toBeNull()
    expect(result.code).toBe(0)
    expect(result.out).toContain('stopped on SIGTERM')
  }, 20_000)
})
