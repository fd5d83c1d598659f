/** `berth reconciler` runs the controller; `berth install` prints or applies what runs it in a cluster. */
import type { Command } from 'commander'
import { cliCacheDir } from './diff.ts'
import { cidrs, count, duration } from './flags.ts'
import { redact } from '../shared/redact.ts'
import { firstSignal } from '../shared/signals.ts'
import { leaseName } from '../api/well-known.ts'
import { INSTALL_DEFAULTS as DEFAULT_INSTALL } from '../install/defaults.ts'
import type { InstallOptions } from '../install/manifests.ts'

type Target = { kubeconfig?: string; context?: string }
type InstallFlags = { crdsOnly?: boolean; apply?: boolean; dryRun?: boolean; denyReceiverCidr?: string[] }
type Election = {
  leaderElect?: boolean
  leaderElectionNamespace?: string
  leaseDuration: number
  renewDeadline: number
  retryPeriod: number
}

const target = (o: Target): Target => ({
  ...(o.kubeconfig ? { kubeconfig: o.kubeconfig } : {}),
  ...(o.context ? { context: o.context } : {}),
})

export function registerReconciler(program: Command): void {
  program
    .command('reconciler')
    .description('run the controller that makes the cluster match each Environment (current kubeconfig, or in-cluster)')
    .option('--kubeconfig <file>', 'kubeconfig (default $KUBECONFIG, ~/.kube/config, or in-cluster)')
    .option('--context <name>', 'kubeconfig context')
    .option('--cache-dir <dir>', 'where artifact layers are cached by digest', cliCacheDir())
    .option('--concurrency <n>', 'Environments reconciled at once', count(1), 4)
    .option(
      '--min-interval <duration>',
      'the shortest interval an Environment gets: a smaller spec.interval is raised to it (status says so)',
      duration,
      10_000,
    )
    .option('-n, --namespace <ns>', 'reconcile only the Environments of this namespace (default: all)')
    .option(
      '--metrics-address <host:port>',
      'serve /metrics, /healthz and /readyz here ("" to disable)',
      '0.0.0.0:8080',
    )
    .option(
      '--default-service-account <name>',
      'lockdown: an Environment without spec.serviceAccountName acts as this ServiceAccount of its own namespace; '
      + 'berth never applies with its own identity',
    )
    .option(
      '--shard <key>',
      'reconcile only Environments labelled berth.dev/shard=<key> (default: only those without the label); '
      + 'each shard elects its leader on a Lease of its own',
    )
    .option('--cluster-name <name>', 'the cluster\'s name in notifications (spec.notify)')
    .option(
      '--deny-receiver-cidr <cidr>',
      'notification receivers may not resolve into this range (repeatable; link-local and cloud metadata always denied)',
      cidrs,
    )
    .option(
      '--prometheus-address <url>',
      'the Prometheus metric checks (spec.health.metrics) ask when they name no Secret, such as '
      + 'http://prometheus.monitoring:9090',
    )
    .option('--leader-elect', 'run several replicas safely: only the holder of a Lease reconciles')
    .option('--leader-election-namespace <ns>', 'namespace of the Lease (default $POD_NAMESPACE, else berth-system)')
    .option('--lease-duration <duration>', 'how long a silent leader keeps the Lease', duration, 15_000)
    .option('--renew-deadline <duration>', 'a leader that cannot renew for this long stops', duration, 10_000)
    .option('--retry-period <duration>', 'how often to renew or try to acquire', duration, 2_000)
    .action(
      async (
        options: Target
          & Election & { cacheDir: string; concurrency: number; namespace?: string; metricsAddress: string } & {
            defaultServiceAccount?: string
            shard?: string
            clusterName?: string
            denyReceiverCidr?: string[]
            minInterval: number
            prometheusAddress?: string
          },
      ) => {
        const [{ Kube }, { Controller }, { Metrics, serveObservability }, { LeaderElector }]
          = await Promise.all([
            import('../shared/kube.ts'),
            import('../reconciler/controller/controller.ts'),
            import('../reconciler/controller/observability.ts'),
            import('../reconciler/controller/leader.ts'),
          ])
        const { pino } = await import('pino')
        // Structured JSON on stderr; synchronous, so the last lines survive a deliberate exit.
        const logger = pino(
          {
            base: { component: 'berth-reconciler' },
            timestamp: pino.stdTimeFunctions.isoTime,
          },
          pino.destination({ dest: 2, sync: true }),
        )
        const log = (fields: Record<string, unknown>): void => {
          const { msg, ...rest } = redact(fields)
          if ('error' in rest) logger.warn(rest, String(msg))
          else logger.info(rest, String(msg))
        }
        const metrics = new Metrics()
        const kube = Kube.connect(target(options))
        const controller = new Controller(kube, {
          cacheDir: options.cacheDir,
          defaultServiceAccount: options.defaultServiceAccount,
          shard: options.shard,
          concurrency: options.concurrency,
          log,
          namespace: options.namespace,
          metrics,
          clusterName: options.clusterName,
          notify: { denyCidrs: options.denyReceiverCidr ?? [] },
          minIntervalMs: options.minInterval,
          prometheusAddress: options.prometheusAddress,
        })
        // The Lease has a client of its own, with a deadline inside the renew deadline: its requests
        // never wait behind a reconcile's, and one that hangs ends in time for the watchdog to decide.
        const renewDeadlineMs = options.renewDeadline
        const leaseKube = Kube.connect(target(options), { timeoutMs: Math.max(500, renewDeadlineMs / 2) })
        const elector = options.leaderElect
          ? new LeaderElector(leaseKube, {
              namespace: options.leaderElectionNamespace ?? process.env.POD_NAMESPACE ?? 'berth-system',
              name: leaseName(options.shard),
              leaseDurationMs: options.leaseDuration,
              renewDeadlineMs,
              retryPeriodMs: options.retryPeriod,
              log,
            })
          : undefined
        // A standby replica is healthy and ready; the leader is ready once its watch runs.
        const ready = (): boolean => controller.watching || (elector !== undefined && !controller.started)
        const server = options.metricsAddress
          ? await serveObservability(options.metricsAddress, metrics, ready)
          : undefined
        const signalled = firstSignal()
        metrics.leader.set(0)
        const start = async (): Promise<void> => {
          metrics.leader.set(1)
          await controller.start()
          log({ msg: 'watching Environments' })
        }
        if (elector) {
          log({ msg: 'waiting for the lease', identity: elector.identity })
          elector.run(
            () => void start(),
            () => {
              // Another replica may already be applying: stop at once, as client-go controllers do.
              log({ msg: 'leadership lost: exiting' })
              process.exit(1)
            },
          )
        } else {
          await start()
        }
        const signal = await signalled
        log({ msg: `${signal}: finishing the pass in flight, then exiting` })
        await controller.stop()
        await elector?.stop()
        server?.close()
        log({ msg: 'stopped' })
      },
    )

  program
    .command('install')
    .description(
      'print what runs berth in a cluster (Namespace, CRD, ServiceAccount, RBAC, Service, Deployment) as YAML, or apply it with --apply',
    )
    .option('--namespace <ns>', 'namespace the reconciler runs in', DEFAULT_INSTALL.namespace)
    .option('--image <ref>', 'reconciler image (build it with the Dockerfile)', DEFAULT_INSTALL.image)
    .option('--replicas <n>', 'replicas; one leads, the others stand by', count(1), DEFAULT_INSTALL.replicas)
    .option('--watch-namespace <ns>', 'reconcile only this namespace\'s Environments, with rights only there')
    .option(
      '--allow <resource.group>',
      'another kind the reconciler may apply, as kubectl names it (namespaces, customresourcedefinitions.apiextensions.k8s.io); repeatable',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option(
      '--default-service-account <name>',
      'lockdown: the reconciler gets no apply rights of its own; each Environment acts as its spec.serviceAccountName '
      + 'or this ServiceAccount of its namespace',
    )
    .option(
      '--shards <a,b,c>',
      'also one Deployment per shard (berth reconciler --shard KEY), each reconciling the Environments labelled '
      + 'berth.dev/shard=KEY; the first Deployment keeps those without the label',
      (v: string) =>
        v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
    )
    .option('--cluster-name <name>', 'the cluster\'s name in notifications (berth reconciler --cluster-name)')
    .option('--deny-receiver-cidr <cidr>', 'passed to the reconciler: receivers may not resolve into this range (repeatable)', cidrs)
    .option('--prometheus-address <url>', 'passed to the reconciler: the Prometheus metric checks ask by default')
    .option('--crds-only', 'just berth\'s CRDs (Environment, EnvironmentSet, Approval)')
    .option(
      '--apply',
      'apply it to the cluster (server-side), delete what an earlier install of this namespace created and this one '
      + 'no longer renders, and wait until the CRD is Established',
    )
    .option('--dry-run', 'with --apply: a server-side dry run, and list what would be deleted; change nothing')
    .option('--kubeconfig <file>', 'kubeconfig')
    .option('--context <name>', 'kubeconfig context')
    .action(async (given: Target & InstallOptions & InstallFlags) => {
      const options = { ...given, denyReceiverCidrs: given.denyReceiverCidr }
      const { installObjects, installYaml } = await import('../install/manifests.ts')
      const everything = installObjects(options)
      const crds = everything.filter((o) => o.kind === 'CustomResourceDefinition')
      const objects = options.crdsOnly ? crds : everything
      if (!options.apply) {
        process.stdout.write(installYaml(objects))
        return
      }
      const [{ Kube }, { waitEstablished }, { applyInstall }, { waitEnvironmentsAdmitted }] = await Promise.all([
        import('../shared/kube.ts'),
        import('../shared/crds.ts'),
        import('../install/apply.ts'),
        import('../install/crd.ts'),
      ])
      const kube = Kube.connect(target(options))
      const dryRun = options.dryRun === true
      const done = await applyInstall(kube, objects, options.namespace, { dryRun, prune: !options.crdsOnly })
      const suffix = dryRun ? ' (server dry run)' : ''
      for (const o of done.applied) process.stdout.write(`${o} applied${suffix}\n`)
      for (const o of done.deleted)
        process.stdout.write(`${o} ${dryRun ? 'would be deleted' : 'deleted'}: no longer installed\n`)
      if (dryRun) return
      for (const crd of crds) await waitEstablished(kube, crd.metadata.name, 60_000)
      // Established, and admitted: Environments can be created the moment this returns.
      // And stamped by the promotion policies, where they apply (the watched namespace, if one).
      const where = options.crdsOnly ? 'default' : (options.watchNamespace ?? options.namespace)
      await waitEnvironmentsAdmitted(kube, where, 60_000, { stamped: !options.crdsOnly })
      for (const crd of crds) process.stdout.write(`customresourcedefinition/${crd.metadata.name} Established\n`)
    })
}
