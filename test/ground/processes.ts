/**
 * Starting and stopping the ground's server processes so that none outlives its owner.
 *
 * Each server runs in a process group of its own (detached), so a Ctrl-C aimed at the test
 * runner does not kill a server halfway through a write, and stopping it takes its children
 * too. A guardian — a tiny shell loop, itself detached — watches the owner's pid: when the
 * owner dies without cleaning up (SIGKILL, a crash), the guardian stops the servers and
 * removes the run folder.
 */
import { spawn } from 'node:child_process'
import { openSync, closeSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { EnvironmentError } from '../../shared/errors.ts'

export type Started = { name: string; pid: number; log: string }

/** Start `command` detached with stdout and stderr into `log`. */
export function startProcess(name: string, command: string, args: readonly string[], log: string): Started {
  const fd = openSync(log, 'a')
  try {
    const child = spawn(command, args, { detached: true, stdio: ['ignore', fd, fd] })
    if (child.pid === undefined) throw new EnvironmentError('StartFailed', `could not start ${name} (${command})`)
    child.unref()
    return { name, pid: child.pid, log }
  } finally {
    closeSync(fd)
  }
}

/**
 * Whether `pid` still runs. A zombie counts as gone: servers whose owner died are re-parented
 * to PID 1, which on some machines never reaps them, yet `kill -0` still answers for them.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    // Field 3 of /proc/<pid>/stat is the state; the command name before it is in parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return true
  }
}

/** SIGTERM the process group, then SIGKILL what is left after `graceMs`. */
export async function stopProcess(pid: number, graceMs = 10_000): Promise<void> {
  signalGroup(pid, 'SIGTERM')
  const deadline = Date.now() + graceMs
  while (isAlive(pid) && Date.now() < deadline) await sleep(50)
  if (isAlive(pid)) signalGroup(pid, 'SIGKILL')
  while (isAlive(pid)) await sleep(20)
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal)
  } catch {
    // Already gone.
  }
}

/** The script in the run folder that undoes a real node (node.ts); the guardian runs it too. */
export const NODE_CLEANUP = 'node-cleanup.sh'

/** File in the run folder listing, a line each, the process groups the guardian reaps. */
export const GUARDED_PIDS = 'guarded.pids'

// $1 owner pid, $2 run folder. POSIX sh (dash's kill takes no `--`). Fixed text; values arrive as arguments. The pid
// list is read
// only when the owner is gone, so servers started after the guardian are covered too.
const GUARDIAN = `
owner=$1; dir=$2
running() { kill -0 "$1" 2>/dev/null && [ "$(sed 's/.*) \\(.\\).*/\\1/' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
while running "$owner"; do sleep 1; done
[ -x "$dir/${NODE_CLEANUP}" ] && "$dir/${NODE_CLEANUP}"
pids=$(cat "$dir/${GUARDED_PIDS}" 2>/dev/null)
for p in $pids; do kill -TERM "-$p" 2>/dev/null; done
sleep 5
for p in $pids; do kill -KILL "-$p" 2>/dev/null; done
[ -x "$dir/${NODE_CLEANUP}" ] && "$dir/${NODE_CLEANUP}"
case "$dir" in */berth-ground-*) rm -rf -- "$dir" ;; esac
`

/** Start a guardian that stops the process groups listed in `dir` and removes `dir` once `owner` has exited. */
export function startGuardian(owner: number, dir: string): number {
  const child = spawn('sh', ['-c', GUARDIAN, 'berth-ground-guardian', String(owner), dir], {
    detached: true,
    stdio: 'ignore',
  })
  child.unref()
  if (child.pid === undefined) throw new EnvironmentError('StartFailed', 'could not start the test-ground guardian')
  return child.pid
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port)
        else reject(new Error('no port assigned'))
      })
    })
  })
}

/**
 * Poll `probe` until it returns true. Fails early, with the log's tail, when the process
 * dies; fails after `timeoutMs` otherwise.
 */
export async function waitUntil(started: Started, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (!isAlive(started.pid))
      throw new EnvironmentError('StartFailed', `${started.name} exited while starting:\n${logTail(started.log)}`)
    if (await probe().catch(() => false)) return
    if (Date.now() > deadline)
      throw new EnvironmentError(
        'StartFailed',
        `${started.name} was not ready after ${timeoutMs / 1000} s:\n${logTail(started.log)}`,
      )
    await sleep(100)
  }
}

export function logTail(log: string, lines = 20): string {
  try {
    return readFileSync(log, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}
