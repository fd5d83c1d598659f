/** `berth reconciler` runs the controller; `berth install` prints or applies the CRD. */
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { Command } from 'commander'

type Target = { kubeconfig?: string; context?: string }

const target = (o: Target): Target => ({ ...(o.kubeconfig ? { kubeconfig: o.kubeconfig } : {}), ...(o.context ? { context: o.context } : {}) })

export function registerReconciler(program: Command): void {
  program
    .command('reconciler')
    .description('run the controller that makes the cluster match each Environment (current kubeconfig, or in-cluster)')
    .option('--kubeconfig <file>', 'kubeconfig (default $KUBECONFIG, ~/.kube/config, or in-cluster)')
    .option('--context <name>', 'kubeconfig context')
    .option('--cache-dir <dir>', 'where artifact layers are cached by digest', join(process.env.BERTH_CACHE_DIR ?? join(homedir(), '.cache', 'berth'), 'artifacts'))
    .option('--concurrency <n>', 'Environments reconciled at once', (v) => Number.parseInt(v, 10), 4)
    .option('-n, --namespace <ns>', 'reconcile only the Environments of this namespace (default: all)')
    .option('--metrics-address <host:port>', 'serve /metrics, /healthz and /readyz here ("" to disable)', '0.0.0.0:8080')
    .action(async (options: Target & { cacheDir: string; concurrency: number; namespace?: string; metricsAddress: string }) => {
      const [{ Kube }, { Controller }, { Metrics, serveObservability }] = await Promise.all([
        import('../shared/kube.ts'),
        import('../reconciler/controller.ts'),
        import('../reconciler/observability.ts'),
      ])
      const log = (fields: Record<string, unknown>): void => {
        process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...fields })}\n`)
      }
      const metrics = new Metrics()
      const controller = new Controller(Kube.connect(target(options)), { cacheDir: options.cacheDir, concurrency: options.concurrency, log, namespace: options.namespace, metrics })
      const server = options.metricsAddress ? await serveObservability(options.metricsAddress, metrics, () => controller.watching) : undefined
      const signalled = new Promise<NodeJS.Signals>((resolve) => {
        process.once('SIGTERM', resolve)
        process.once('SIGINT', resolve)
      })
      await controller.start()
      log({ msg: 'watching Environments' })
      const signal = await signalled
      log({ msg: `${signal}: finishing the pass in flight, then exiting` })
      await controller.stop()
      server?.close()
      log({ msg: 'stopped' })
    })

  program
    .command('install')
    .description('print the Environment CRD as YAML, or apply it with --apply')
    .option('--apply', 'apply it to the cluster (server-side) and wait until it is Established')
    .option('--kubeconfig <file>', 'kubeconfig')
    .option('--context <name>', 'kubeconfig context')
    .action(async (options: Target & { apply?: boolean }) => {
      if (!options.apply) {
        const [{ environmentCrd }, { dump }] = await Promise.all([import('../reconciler/api.ts'), import('js-yaml')])
        process.stdout.write(dump(environmentCrd(), { lineWidth: -1, noRefs: true }))
        return
      }
      const [{ Kube }, { installEnvironmentCrd }] = await Promise.all([import('../shared/kube.ts'), import('../reconciler/crds.ts')])
      const name = await installEnvironmentCrd(Kube.connect(target(options)))
      process.stdout.write(`customresourcedefinition/${name} applied and Established\n`)
    })
}
