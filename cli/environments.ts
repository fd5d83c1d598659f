/**
 * The SRE's commands on Environments: status, promote, rollback, suspend, resume, reconcile,
 * history. Each works as `berth …` and `kubectl berth …`, honours KUBECONFIG, --context and
 * -n/-A, and has `-o json` where it prints something scripts read.
 */
import type { Command } from 'commander'
import { PROMOTED_BY, SUSPENDED } from '../api/well-known.ts'
import type { Environment } from '../api/environment.ts'
import { readyOf, settled } from '../reconciler/pass/status.ts'
import { firstSignal } from '../shared/signals.ts'
import { BerthError, InvalidInputError, messageOf, RemoteError, UsageError } from '../shared/errors.ts'
import type { Kube } from '../shared/kube.ts'

type Common = { kubeconfig?: string; context?: string; namespace?: string }

function common(command: Command): Command {
  return command
    .option('--kubeconfig <file>', 'kubeconfig (default $KUBECONFIG or ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context')
    .option('-n, --namespace <ns>', 'namespace (default: the context\'s namespace, else "default")')
}

async function connect(options: Common): Promise<{ kube: Kube; namespace: string }> {
  const { Kube } = await import('../shared/kube.ts')
  const kube = Kube.connect({
    ...(options.kubeconfig ? { kubeconfig: options.kubeconfig } : {}),
    ...(options.context ? { context: options.context } : {}),
  })
  const namespace = options.namespace ?? kube.access.namespace ?? 'default'
  return { kube, namespace }
}

async function api(): Promise<typeof import('../api/environment.ts')> {
  return await import('../api/environment.ts')
}

async function getEnvironment(kube: Kube, namespace: string, name: string): Promise<Environment> {
  const { environmentRef } = await api()
  const env = await kube.get<Environment>(environmentRef(namespace, name))
  if (!env) throw new UsageError('NotFound', `environment ${namespace}/${name} not found (berth status -A lists them)`)
  return env
}

const spec = (env: Environment): { version?: string; digest?: string; suspend?: boolean } => env.spec ?? {}

/** One row of `berth status`, also its JSON form. */
export function summary(env: Environment): Record<string, unknown> {
  const ready = readyOf(env)
  const lastChange = env.status?.conditions
    ?.map((c) => c.lastTransitionTime)
    .sort()
    .at(-1)
  return {
    namespace: env.metadata.namespace,
    name: env.metadata.name,
    pinned: spec(env).version ?? '',
    applied: env.status?.lastAppliedVersion ?? '',
    digest: env.status?.lastAppliedDigest ?? '',
    ready: ready.status,
    reason: ready.reason,
    message: ready.message,
    suspended: spec(env).suspend === true,
    // The key that verified what runs, when spec.verify asks for signatures.
    verified: env.status?.verified?.digest === env.status?.lastAppliedDigest ? (env.status?.verified?.key ?? '') : '',
    ...(spec(env).suspend
      ? {
          suspendedReason: env.metadata.annotations?.[SUSPENDED.reason] ?? '',
          suspendedBy: env.metadata.annotations?.[SUSPENDED.by] ?? '',
        }
      : {}),
    lastChange: lastChange ?? '',
  }
}

function table(rows: ReadonlyArray<readonly string[]>): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  return `${rows
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('   ')
        .trimEnd(),
    )
    .join('\n')}\n`
}

/** Wait until the reconciler has handled generation `generation`: Ready → ok; a terminal failure → error. */
async function waitForOutcome(
  kube: Kube,
  namespace: string,
  name: string,
  generation: number,
  timeoutMs: number,
  done?: (env: Environment) => boolean,
): Promise<Environment> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const env = await getEnvironment(kube, namespace, name)
    const state = done && !done(env) ? 'pending' : settled(env, generation)
    if (state === 'ready') return env
    if (state !== 'pending') throw new BerthError(state.failed.reason, `${namespace}/${name}: ${state.failed.message}`)
    const ready = readyOf(env)
    if (Date.now() > deadline)
      throw new BerthError(
        'Timeout',
        `${namespace}/${name} not Ready after ${timeoutMs / 1000} s: ${ready.message || 'no verdict yet'}`,
      )
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

/**
 * Refuse a pin the registry does not have, before anything changes. When the registry cannot
 * be asked from here (in-cluster only, other credentials), say so and let the reconciler judge.
 */
async function checkPublished(
  kube: Kube,
  env: Environment,
  pin: { version: string; digest?: string | undefined },
  registryConfig: string | undefined,
): Promise<void> {
  const [{ specSchema }, { resolve }, { openSource }, { trustedKeys }, { verifyArtifact }] = await Promise.all([
    api(),
    import('../reconciler/source/resolve.ts'),
    import('../reconciler/source/source.ts'),
    import('../reconciler/source/verify.ts'),
    import('../shared/signatures.ts'),
  ])
  const parsed = specSchema.safeParse(env.spec)
  if (!parsed.success) return
  const spec = parsed.data
  try {
    const source = await openSource(kube, env.metadata.namespace, spec, registryConfig ? { registryConfig } : {})
    try {
      const resolved = await resolve(source.repository, pin.version, pin.digest, source.access)
      // What the reconciler would refuse for want of a trusted signature is refused here, before the pin moves.
      if (spec.verify) {
        const { keys } = await trustedKeys(kube, env.metadata.namespace, spec.verify.secretRef.name)
        await verifyArtifact(source.repository, resolved.digest, keys, source.access)
      }
    } finally {
      await source.close()
    }
  } catch (error: unknown) {
    const reason = error instanceof BerthError ? error.reason : ''
    // A refused signature is refused input (exit 3); a version that is not there stays exit 1, as before.
    if (reason === 'VerificationFailed') throw new InvalidInputError(reason, `${messageOf(error)}; nothing changed`)
    if (reason === 'VersionNotFound' || reason === 'DigestMismatch') {
      throw new BerthError(reason, `${messageOf(error)}; nothing changed`)
    }
    const why = messageOf(error)
    process.stderr.write(`berth: could not check ${pin.version} (${why}); pinning anyway, the reconciler will report\n`)
  }
}

/**
 * Patch Environment `name` as the person running the command; a refusal by RBAC says who may not
 * do what, and that nothing changed (berth-view sees, berth-promote changes).
 */
async function change(kube: Kube, namespace: string, name: string, verb: string, patch: object): Promise<Environment> {
  const [{ environmentRef }, { KubeApiError }] = await Promise.all([api(), import('../shared/kube.ts')])
  try {
    return await kube.mergePatch<Environment>(environmentRef(namespace, name), patch)
  } catch (error: unknown) {
    if (!(error instanceof KubeApiError && error.code === 403)) throw error
    const message
      = `${await who(kube)} is not allowed to ${verb} ${namespace}/${name}; nothing changed. `
        + `Ask for the berth-promote role in ${namespace} (the apiserver said: ${error.detail})`
    throw new RemoteError('Forbidden', message, { cause: error })
  }
}

async function who(kube: Kube): Promise<string> {
  try {
    const review = await kube.create<{
      apiVersion: string
      kind: string
      metadata: { namespace?: string }
      status?: { userInfo?: { username?: string } }
    }>({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'SelfSubjectReview',
      metadata: {},
    })
    return review.status?.userInfo?.username ?? 'unknown'
  } catch {
    return 'unknown'
  }
}

async function printStatus(
  rows: ReadonlyArray<Record<string, unknown>>,
  name: string | undefined,
  options: { output: string; allNamespaces?: boolean },
  namespace: string,
): Promise<void> {
  if (options.output === 'json') process.stdout.write(`${JSON.stringify(name ? rows[0] : rows, null, 2)}\n`)
  else if (options.output === 'yaml') process.stdout.write((await import('js-yaml')).dump(name ? rows[0] : rows))
  else if (rows.length === 0)
    process.stdout.write(`no Environments in ${options.allNamespaces ? 'any namespace' : `namespace ${namespace}`}\n`)
  else {
    const header = [
      'NAMESPACE',
      'NAME',
      'PINNED',
      'APPLIED',
      'DIGEST',
      'READY',
      'SUSPENDED',
      'VERIFIED',
      'LAST CHANGE',
      'MESSAGE',
    ]
    process.stdout.write(
      table([
        header,
        ...rows.map((r) => [
          String(r.namespace),
          String(r.name),
          String(r.pinned),
          String(r.applied),
          String(r.digest).replace('sha256:', '').slice(0, 12),
          String(r.ready),
          r.suspended ? 'yes' : 'no',
          String(r.verified) || '-',
          String(r.lastChange),
          String(r.message),
        ]),
      ]),
    )
  }
}

export function registerEnvironmentCommands(program: Command): void {
  common(
    program
      .command('status')
      .description('every Environment at a glance: pinned and applied version, digest, Ready, message, suspended'),
  )
    .argument('[env]', 'one Environment')
    .option('-A, --all-namespaces', 'every namespace')
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .option('-w, --watch', 'print again whenever something changes, until interrupted')
    .action(
      async (
        name: string | undefined,
        options: Common & { allNamespaces?: boolean; output: string; watch?: boolean },
      ) => {
        if (!['table', 'json', 'yaml'].includes(options.output))
          throw new UsageError('InvalidOutput', `-o ${options.output}: use table, json or yaml`)
        const { kube, namespace } = await connect(options)
        const { API_VERSION, KIND } = await api()
        const read = async (): Promise<Array<Record<string, unknown>>> =>
          (name
            ? [await getEnvironment(kube, namespace, name)]
            : await kube.list<Environment>(API_VERSION, KIND, options.allNamespaces ? {} : { namespace })
          ).map(summary)
        let rows = await read()
        await printStatus(rows, name, options, namespace)
        if (!options.watch) return
        const state = { stop: false }
        void firstSignal().then(() => (state.stop = true))
        while (!state.stop) {
          await new Promise((resolve) => setTimeout(resolve, 1000))
          const next = await read()
          if (JSON.stringify(next) !== JSON.stringify(rows)) await printStatus(next, name, options, namespace)
          rows = next
        }
      },
    )

  common(program.command('promote').description('pin an Environment to a version, or to what another Environment runs'))
    .argument('<env>', 'the Environment to promote')
    .option('--to <version>', 'the version to pin')
    .option('--from <env>', 'copy the version and digest another Environment has applied and is Ready on')
    .option('--wait', 'block until Ready (exit 0) or failure (exit non-zero)')
    .option('--timeout <seconds>', 'how long --wait waits', (v) => Number.parseInt(v, 10), 300)
    .option(
      '--file <environment.yaml>',
      'GitOps mode: edit the pin in this file (comments kept) and commit it, instead of the cluster',
    )
    .option(
      '--dry-run',
      'print what would change in the cluster (created, changed with fields, pruned), computed server-side; change nothing',
    )
    .option('--registry-config <file>', 'credentials for --dry-run to pull the artifact (default: oras/Docker lookup)')
    .action(
      async (
        name: string,
        options: Common & {
          to?: string
          from?: string
          wait?: boolean
          timeout: number
          file?: string
          dryRun?: boolean
          registryConfig?: string
        },
      ) => {
        if ((options.to === undefined) === (options.from === undefined))
          throw new UsageError('Usage', 'give exactly one of --to <version> or --from <env>')
        if (options.file !== undefined && options.to !== undefined) {
          const { promoteInFile } = await import('./gitops.ts')
          const { before, commit } = await promoteInFile(options.file, name, { version: options.to, digest: null })
          process.stdout.write(
            `${options.file}: promote ${name} ${before || '(none)'} → ${options.to} (commit ${commit.slice(0, 12)})\n`,
          )
          return
        }
        const { kube, namespace } = await connect(options)
        const env = await getEnvironment(kube, namespace, name)
        let pin: { version: string; digest: string | null }
        if (options.from !== undefined) {
          const source = await getEnvironment(kube, namespace, options.from)
          const ready = readyOf(source)
          if (ready.status !== 'True' || !source.status?.lastAppliedVersion || !source.status.lastAppliedDigest) {
            throw new BerthError(
              'SourceNotReady',
              `${options.from} is not Ready (${ready.message || 'no verdict'}); promote from an Environment that runs its version healthily`,
            )
          }
          pin = { version: source.status.lastAppliedVersion, digest: source.status.lastAppliedDigest }
        } else {
          pin = { version: options.to ?? '', digest: null }
        }
        await checkPublished(
          kube,
          env,
          { version: pin.version, digest: pin.digest ?? undefined },
          options.registryConfig,
        )
        const before = spec(env).version ?? ''
        if (options.dryRun) {
          const { planPromotion } = await import('../reconciler/apply/plan.ts')
          const { cliCacheDir } = await import('./diff.ts')
          const cache = cliCacheDir()
          const access = options.registryConfig ? { registryConfig: options.registryConfig } : {}
          const plan = await planPromotion(
            kube,
            env,
            { version: pin.version, digest: pin.digest ?? undefined },
            access,
            cache,
          )
          if (plan.diff) {
            // First what the release changes (artifact to artifact), then what the cluster would (server-side plan).
            const { formatDiff } = await import('../shared/artifact-diff.ts')
            const running = env.status?.lastAppliedVersion ?? ''
            process.stdout.write(`artifact diff ${running} → ${plan.version}, ${formatDiff([plan.diff])}`)
          }
          const lines = [
            `${namespace}/${name}: ${before || '(none)'} → ${plan.version} (${plan.digest}), dry run: nothing changed`,
            ...plan.created.map((o) => `  + ${o}`),
            ...plan.changed.map((c) => `  ~ ${c.object}: ${c.fields.join(', ')}`),
            ...plan.pruned.map((o) => `  - ${o}`),
            `${plan.created.length} to create, ${plan.changed.length} to change, ${plan.pruned.length} to prune`,
          ]
          process.stdout.write(`${lines.join('\n')}\n`)
          return
        }
        if (options.file !== undefined) {
          const { promoteInFile } = await import('./gitops.ts')
          const edited = await promoteInFile(options.file, name, pin)
          process.stdout.write(
            `${options.file}: promote ${name} ${edited.before || '(none)'} → ${pin.version} (commit ${edited.commit.slice(0, 12)})\n`,
          )
          return
        }
        const patched = await change(kube, namespace, name, 'promote', {
          metadata: { annotations: { [PROMOTED_BY]: await who(kube) } },
          spec: pin,
        })
        process.stdout.write(
          `${namespace}/${name}: ${before || '(none)'} → ${pin.version}${pin.digest ? ` (${pin.digest})` : ''}\n`,
        )
        if (options.wait) {
          const done = await waitForOutcome(
            kube,
            namespace,
            name,
            patched.metadata.generation ?? 0,
            options.timeout * 1000,
          )
          process.stdout.write(`${namespace}/${name}: Ready on ${done.status?.lastAppliedVersion ?? ''}\n`)
        }
      },
    )

  common(program.command('rollback').description('re-pin the last version that was Ready before the current one'))
    .argument('<env>', 'the Environment')
    .option('--to <version>', 'a specific earlier version from history')
    .option('--wait', 'block until Ready or failure')
    .option('--timeout <seconds>', 'how long --wait waits', (v) => Number.parseInt(v, 10), 300)
    .action(async (name: string, options: Common & { to?: string; wait?: boolean; timeout: number }) => {
      const { kube, namespace } = await connect(options)
      const env = await getEnvironment(kube, namespace, name)
      const current = spec(env).version
      // Loaded here: semver is start-up time every other command (berth push above all) would pay.
      const { chooseRollback } = await import('../reconciler/pass/rollback.ts')
      const target = chooseRollback(env, options.to)
      if (!target) {
        throw new BerthError(
          'NoHistory',
          options.to !== undefined
            ? `${options.to} was never Ready on ${namespace}/${name} (berth history ${name} lists what was)`
            : `${namespace}/${name} has no earlier Ready version in its history to roll back to`,
        )
      }
      const patched = await change(kube, namespace, name, 'roll back', {
        metadata: { annotations: { [PROMOTED_BY]: await who(kube) } },
        spec: { version: target.version, digest: target.digest },
      })
      process.stdout.write(
        `${namespace}/${name}: rolled back ${current ?? '(none)'} → ${target.version} (${target.digest})\n`,
      )
      if (options.wait)
        await waitForOutcome(kube, namespace, name, patched.metadata.generation ?? 0, options.timeout * 1000)
    })

  common(program.command('suspend').description('stop every change to an Environment (incidents)'))
    .argument('<env>', 'the Environment')
    .requiredOption('--reason <text>', 'why, shown in status and events')
    .action(async (name: string, options: Common & { reason: string }) => {
      const { kube, namespace } = await connect(options)
      await getEnvironment(kube, namespace, name)
      const by = await who(kube)
      const at = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')
      await change(kube, namespace, name, 'suspend', {
        metadata: { annotations: { [SUSPENDED.reason]: options.reason, [SUSPENDED.by]: by, [SUSPENDED.at]: at } },
        spec: { suspend: true },
      })
      process.stdout.write(`${namespace}/${name}: suspended by ${by} at ${at}: ${options.reason}\n`)
    })

  common(program.command('resume').description('let the reconciler change an Environment again'))
    .argument('<env>', 'the Environment')
    .action(async (name: string, options: Common) => {
      const { kube, namespace } = await connect(options)
      await getEnvironment(kube, namespace, name)
      await change(kube, namespace, name, 'resume', {
        metadata: { annotations: { [SUSPENDED.reason]: null, [SUSPENDED.by]: null, [SUSPENDED.at]: null } },
        spec: { suspend: false },
      })
      process.stdout.write(`${namespace}/${name}: resumed by ${await who(kube)}\n`)
    })

  common(program.command('reconcile').description('ask the reconciler for a pass now'))
    .argument('<env>', 'the Environment')
    .option('--wait', 'block until the reconciler has handled the request')
    .option('--timeout <seconds>', 'how long --wait waits', (v) => Number.parseInt(v, 10), 120)
    .action(async (name: string, options: Common & { wait?: boolean; timeout: number }) => {
      const { kube, namespace } = await connect(options)
      await getEnvironment(kube, namespace, name)
      const { RECONCILE_REQUESTED_AT } = await api()
      const at = new Date().toISOString()
      const patched = await change(kube, namespace, name, 'request a pass of', {
        metadata: { annotations: { [RECONCILE_REQUESTED_AT]: at } },
      })
      process.stdout.write(`${namespace}/${name}: reconcile requested at ${at}\n`)
      if (options.wait) {
        const env = await waitForOutcome(
          kube,
          namespace,
          name,
          patched.metadata.generation ?? 0,
          options.timeout * 1000,
          (e) => e.status?.lastHandledReconcileAt === at,
        )
        process.stdout.write(`${namespace}/${name}: handled; Ready on ${env.status?.lastAppliedVersion ?? ''}\n`)
      }
    })

  common(program.command('history').description('the applications of an Environment: version, digest, when, result'))
    .argument('<env>', 'the Environment')
    .option('-o, --output <format>', 'table or json', 'table')
    .action(async (name: string, options: Common & { output: string }) => {
      const { kube, namespace } = await connect(options)
      const env = await getEnvironment(kube, namespace, name)
      const history = env.status?.history ?? []
      if (options.output === 'json') {
        process.stdout.write(`${JSON.stringify(history, null, 2)}\n`)
        return
      }
      if (history.length === 0) {
        process.stdout.write(`${namespace}/${name} has no history yet\n`)
        return
      }
      process.stdout.write(
        table([
          ['VERSION', 'DIGEST', 'BY', 'STARTED', 'FINISHED', 'RESULT'],
          ...history.map((h) => [
            h.version,
            h.digest.replace('sha256:', '').slice(0, 12),
            h.by ?? '-',
            h.started,
            h.finished,
            h.result,
          ]),
        ]),
      )
    })
}
