/** A real `berth reconciler` process, as tests run it: its own cache, its logs kept, killed after the file. */
import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { ROOT } from './ground.ts'

export type ReconcilerProcess = { child: ChildProcess; logs: () => string; kill: () => void }

/**
 * Start `berth reconciler --kubeconfig <kubeconfig> --cache-dir <cacheDir>` with `args` added
 * (`--metrics-address ''` unless `args` names one) and `env` added to this process's environment,
 * keeping what it logs.
 */
export function startReconciler(
  kubeconfig: string,
  cacheDir: string,
  args: readonly string[] = [],
  env: Readonly<Record<string, string>> = {},
): ReconcilerProcess {
  const metrics = args.includes('--metrics-address') ? [] : ['--metrics-address', '']
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'bin/berth.js'),
      'reconciler',
      '--kubeconfig',
      kubeconfig,
      '--cache-dir',
      cacheDir,
      ...metrics,
      ...args,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } },
  )
  let logs = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (logs += chunk))
  return { child, logs: () => logs, kill: () => child.kill('SIGKILL') }
}
