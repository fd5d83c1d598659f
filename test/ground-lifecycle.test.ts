import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { type GroundInfo, readGroundInfo } from './ground/ground.ts'
import { isAlive } from './ground/processes.ts'
import { ROOT } from './support/ground.ts'

/** Start `testground run` in a child process; resolve once its ground is up. */
async function startChildGround(): Promise<{ child: ReturnType<typeof spawn>; info: GroundInfo }> {
  const child = spawn(process.execPath, [join(ROOT, 'test/ground/cli.ts'), 'run'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  // Its progress lines are kept for a failure message, not printed into the test output.
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const lines = createInterface({ input: child.stdout })
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve)
    child.once('exit', (code) => {
      reject(new Error(`testground run exited early (${String(code)}):\n${stderr}`))
    })
  })
  return { child, info: await readGroundInfo(first) }
}

/** An assertion that failed before the test stopped its ground must not leave the ground running: stop it now. */
function stopIfRunning(child: ReturnType<typeof spawn>): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
}

async function allGone(pids: readonly number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs
  let alive = pids.filter(isAlive)
  while (alive.length > 0 && Date.now() < deadline) {
    await sleep(100)
    alive = alive.filter(isAlive)
  }
  return alive
}

describe('the test ground leaves no process behind', () => {
  it('stops every server and removes its folder on SIGTERM', async () => {
    const { child, info } = await startChildGround()
    try {
      const pids = info.processes.map((p) => p.pid)
      // etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, the two registries, Prometheus and the
      // Pushgateway.
      expect(pids).toHaveLength(9)
      expect(pids.every(isAlive)).toBe(true)

      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      expect(await exited).toBe(0)
      expect(pids.filter(isAlive)).toEqual([])
      expect(existsSync(info.dir)).toBe(false)
    } finally {
      stopIfRunning(child)
    }
  })

  it('reaps every server when its owner is killed outright (SIGKILL)', async () => {
    const { child, info } = await startChildGround()
    try {
      const pids = [...info.processes.map((p) => p.pid), info.guardianPid ?? -1]
      expect(pids.every(isAlive)).toBe(true)

      child.kill('SIGKILL')
      // The guardian polls once a second, gives SIGTERM 5 s, then SIGKILLs.
      expect(await allGone(pids, 15_000)).toEqual([])
      expect(existsSync(info.dir)).toBe(false)
    } finally {
      stopIfRunning(child)
    }
  })
})
