/**
 * A second kube-apiserver on the ground's etcd: the same cluster through another door. A test
 * can freeze it (SIGSTOP) to make "the apiserver stops answering" real for one client while
 * everything else keeps its own apiserver.
 */
import { appendFile, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { execa } from 'execa'
import { load } from 'js-yaml'
import { writeYaml } from '../../shared/yaml-writer.ts'
import { GUARDED_PIDS, freePort, startProcess, stopProcess, waitUntil } from '../ground/processes.ts'
import type { FileGround } from './ground.ts'

export type SecondApiserver = { pid: number; url: string; kubeconfig: string; stop: () => Promise<void> }

/** Start it with the ground apiserver's own flags but another port; wait until it is ready. */
export async function startSecondApiserver(g: FileGround): Promise<SecondApiserver> {
  const first = g.ground.processes.find((p) => p.name === 'kube-apiserver')
  if (!first) throw new Error('the ground runs no kube-apiserver')
  const [binary = '', ...args] = (await readFile(`/proc/${first.pid}/cmdline`, 'utf8')).split('\0').filter(Boolean)
  const port = await freePort()
  const flags = args.map((a) => (a.startsWith('--secure-port=') ? `--secure-port=${port}` : a))
  const started = startProcess('kube-apiserver-2', binary, flags, join(g.scratch(), 'kube-apiserver-2.log'))
  // The ground's guardian reaps it with the rest if this test process dies.
  await appendFile(join(g.ground.dir, GUARDED_PIDS), `${started.pid}\n`)
  const url = `https://127.0.0.1:${port}`
  const config = load(await readFile(g.ground.kubeconfig, 'utf8')) as {
    clusters: Array<{ cluster: { server: string } }>
  }
  for (const c of config.clusters) c.cluster.server = url
  const kubeconfig = join(g.scratch(), `kubeconfig-${port}`)
  await writeFile(kubeconfig, writeYaml(config), { mode: 0o600 })
  const readyz = async (): Promise<boolean> => {
    const out = await execa(g.ground.parts.kubectl, ['--kubeconfig', kubeconfig, 'get', '--raw', '/readyz'], {
      reject: false,
      timeout: 5_000,
    })
    return out.stdout === 'ok'
  }
  await waitUntil(started, readyz, 60_000).catch(async (error: unknown) => {
    await stopProcess(started.pid)
    throw error
  })
  return {
    pid: started.pid,
    url,
    kubeconfig,
    stop: async () => {
      try {
        process.kill(started.pid, 'SIGCONT')
      } catch {
        // already gone
      }
      await stopProcess(started.pid, 2_000)
    },
  }
}
