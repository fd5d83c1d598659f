/**
 * Faults for real: stop one process of a ground (SIGKILL, SIGTERM), keep it down a while, and
 * start it again with exactly the command line it had, on the same data. The ground's record and
 * its guardian follow the new process, so stopping the ground still stops everything.
 */
import { appendFile, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { execa } from 'execa'
import type { GroundInfo } from '../ground/ground.ts'
import { GUARDED_PIDS, isAlive, startProcess, waitUntil } from '../ground/processes.ts'

export type Stopped = { start: () => Promise<void> }

/** Stop the ground's process `name` with `signal`; `start()` brings it back and waits until it answers. */
export async function stopPart(info: GroundInfo, name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<Stopped> {
  const index = info.processes.findIndex((p) => p.name === name)
  const old = info.processes[index]
  if (!old) throw new Error(`the ground runs no ${name}`)
  const [binary = '', ...args] = (await readFile(`/proc/${old.pid}/cmdline`, 'utf8')).split('\0').filter(Boolean)
  process.kill(-old.pid, signal)
  while (isAlive(old.pid)) await sleep(20)
  return {
    start: async () => {
      const started = startProcess(name, binary, args, old.log)
      info.processes[index] = started
      await appendFile(join(info.dir, GUARDED_PIDS), `${started.pid}\n`)
      await waitUntil(started, () => answers(info, name), 60_000)
    },
  }
}

async function answers(info: GroundInfo, name: string): Promise<boolean> {
  if (name === 'kube-apiserver') {
    const out = await execa(info.parts.kubectl, ['--kubeconfig', info.kubeconfig, 'get', '--raw', '/readyz'], {
      reject: false,
      timeout: 5_000,
    })
    return out.stdout === 'ok'
  }
  if (name === 'registry-plain')
    return (await fetch(`http://${info.registries.plain.host}/v2/`).catch(() => undefined))?.ok ?? false
  // etcd: the apiserver's own view of its storage.
  const out = await execa(info.parts.kubectl, ['--kubeconfig', info.kubeconfig, 'get', '--raw', '/readyz/etcd'], {
    reject: false,
    timeout: 5_000,
  })
  return out.stdout === 'ok'
}
