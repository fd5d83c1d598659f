/**
 * The SRE's commands on Environments: status, promote, rollback, suspend, resume, reconcile,
 * history. Each works as `berth …` and `kubectl berth …`, honours KUBECONFIG, --context, -n/-A,
 * --as/--as-group, and prints as a table or with `-o json|yaml`. Flags and printing only: what
 * the commands decide and wait on lives in reconciler/promote/.
 */
import type { Command } from 'commander'
import { FROZEN, OVERRIDE, PROMOTED_BY, RECONCILE_REQUESTED_AT, SUSPENDED } from '../api/well-known.ts'
import type { Environment } from '../api/environment.ts'
import { firstSignal } from '../shared/signals.ts'
import { BerthError, UsageError } from '../shared/errors.ts'
import type { Kube } from '../shared/kube.ts'
import type { Frozen } from '../reconciler/pass/policy.ts'
import {
  connectionFlags as common,
  type Connection,
  duration,
  type Output,
  outputOption,
  print,
  table,
  targetOf,
} from './flags.ts'

type Common = Connection
type Printing = { output: Output }
type StatusOptions = Common & Printing & { allNamespaces?: boolean; watch?: boolean }

async function connect(options: Common): Promise<{ kube: Kube; namespace: string }> {
  const { Kube } = await import('../shared/kube.ts')
  const kube = Kube.connect(targetOf(options))
  const namespace = options.namespace ?? kube.access.namespace ?? 'default'
  return { kube, namespace }
}

/** The decisions and waits behind the commands, loaded when a command runs (not at start-up). */
async function sre(): Promise<
  typeof import('../reconciler/promote/environments.ts') & typeof import('../reconciler/promote/wait.ts')
> {
  const [environments, wait] = await Promise.all([
    import('../reconciler/promote/environments.ts'),
    import('../reconciler/promote/wait.ts'),
  ])
  return { ...environments, ...wait }
}

const spec = (env: Environment): { version?: string; digest?: string; suspend?: boolean } => env.spec ?? {}
const warn = (line: string): void => {
  process.stderr.write(`berth: ${line}\n`)
}
/** Progress while waiting goes to stderr: stdout stays the command's result (for -o json). */
const progress = (line: string): void => {
  process.stderr.write(`${line}\n`)
}

/** One row of `berth status`, also its JSON form. */
export async function summaries(envs: readonly Environment[]): Promise<Array<Record<string, unknown>>> {
  const [{ readyOf }, { frozenNow }] = await Promise.all([
    import('../reconciler/pass/status.ts'),
    import('../reconciler/pass/policy.ts'),
  ])
  return envs.map((env) => {
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
      frozen: frozenNow(env, new Date()),
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
  })
}

/** One row of the status table, as STATUS_HEADER names its columns. */
const statusCells = (r: Record<string, unknown>): string[] => [
  String(r.namespace),
  String(r.name),
  String(r.pinned),
  String(r.applied),
  String(r.digest).replace('sha256:', '').slice(0, 12),
  String(r.ready),
  r.suspended ? 'yes' : 'no',
  frozenCell(r.frozen as Frozen | undefined),
  String(r.verified) || '-',
  String(r.lastChange),
  String(r.message),
]

const STATUS_HEADER = [
  'NAMESPACE',
  'NAME',
  'PINNED',
  'APPLIED',
  'DIGEST',
  'READY',
  'SUSPENDED',
  'FROZEN',
  'VERIFIED',
  'LAST CHANGE',
  'MESSAGE',
]
const frozenCell = (f: Frozen | undefined): string =>
  f ? `${f.by}: ${f.reason}${f.until ? ` (until ${f.until})` : ''}` : '-'

async function printStatus(
  rows: ReadonlyArray<Record<string, unknown>>,
  name: string | undefined,
  options: Printing & { allNamespaces?: boolean },
  namespace: string,
): Promise<void> {
  await print(options.output, name ? rows[0] : rows, () => {
    if (rows.length === 0) return `no Environments in ${options.allNamespaces ? 'any namespace' : `namespace ${namespace}`}\n`
    return table([STATUS_HEADER, ...rows.map(statusCells)])
  })
}

/**
 * `berth status` across clusters: the Environments of each context (`undefined`: every context of the kubeconfig),
 * one table with a CLUSTER column (the context's name). A context that cannot be read is said on stderr, and the
 * command then exits 1 after printing the others.
 */
async function statusAcross(
  contexts: readonly string[] | undefined,
  name: string | undefined,
  options: StatusOptions,
): Promise<void> {
  const [{ Kube }, { contextNames }, { API_VERSION, KIND }] = await Promise.all([
    import('../shared/kube.ts'),
    import('../shared/kubeconfig.ts'),
    import('../api/environment.ts'),
  ])
  const names = contexts ?? contextNames(options.kubeconfig)
  const rows: Array<Record<string, unknown>> = []
  let failed = 0
  for (const context of names) {
    try {
      const kube = Kube.connect(targetOf({ ...options, context }))
      const namespace = options.namespace ?? kube.access.namespace ?? 'default'
      const scope = options.allNamespaces ? {} : { namespace }
      const listed = await kube.list<Environment>(API_VERSION, KIND, scope)
      const envs = listed.filter((e) => !name || e.metadata.name === name)
      for (const row of await summaries([...envs].sort(byName))) rows.push({ cluster: context, ...row })
    } catch (error: unknown) {
      failed += 1
      warn(`context ${context}: ${error instanceof Error ? error.message : String(error)}`)
    }
  }
  await print(options.output, rows, () =>
    rows.length === 0
      ? `no Environments in ${names.join(', ')}\n`
      : table([
          ['CLUSTER', ...STATUS_HEADER],
          ...rows.map((r) => [String(r.cluster), ...statusCells(r)]),
        ]),
  )
  if (failed > 0) process.exitCode = 1
}

const byName = (a: Environment, b: Environment): number =>
  `${a.metadata.namespace}/${a.metadata.name}` < `${b.metadata.namespace}/${b.metadata.name}` ? -1 : 1

type Approving = { version: string; reason?: string; registryConfig?: string }
type Selecting = Common & Printing & { allNamespaces?: boolean; selector?: string }
type Change = { patch: object; said: (key: string) => string; result: Record<string, unknown> }

/**
 * Change one Environment, or every one `-A` / `-l` selects (in the namespace, or all of them with -A): the same merge
 * patch on each, a line each, or a list with -o. Refuses to guess: a name, -A or -l must be given.
 */
async function changeSelected(
  name: string | undefined,
  options: Selecting,
  verb: string,
  make: (kube: Kube) => Promise<Change>,
): Promise<void> {
  if ((name === undefined) === !(options.allNamespaces || options.selector))
    throw new UsageError('Usage', `${verb}: name one Environment, or select them with -A or -l (not both)`)
  const { kube, namespace } = await connect(options)
  const { getEnvironment, change } = await sre()
  const { API_VERSION, KIND } = await import('../api/environment.ts')
  const targets = name
    ? [await getEnvironment(kube, namespace, name)]
    : await kube.list<Environment>(API_VERSION, KIND, {
        ...(options.allNamespaces ? {} : { namespace }),
        ...(options.selector ? { labelSelector: options.selector } : {}),
      })
  if (targets.length === 0) throw new UsageError('NotFound', `${verb}: no Environment matches; nothing changed`)
  const made = await make(kube)
  const results: Array<Record<string, unknown>> = []
  for (const env of [...targets].sort(byName)) {
    const { namespace: ns, name: n } = env.metadata
    await change(kube, ns, n, verb, made.patch)
    results.push({ namespace: ns, name: n, ...made.result })
  }
  await print(options.output, name ? results[0] : results, () =>
    `${results.map((r) => made.said(`${String(r.namespace)}/${String(r.name)}`)).join('\n')}\n`)
}

/** `--until`: an RFC 3339 time, or a duration from now; as RFC 3339 (seconds). */
function untilOf(text: string): string {
  const at = /^\d{4}-/.test(text) ? Date.parse(text) : Date.now() + duration(text)
  if (Number.isNaN(at)) throw new UsageError('Usage', `--until ${text}: give an RFC 3339 time or a duration such as 2h`)
  return new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/** `--wait`'s outcome, printed as the command's result (text, or the Environment's summary with -o). */
async function waited(
  kube: Kube,
  target: { namespace: string; name: string; generation: number },
  options: { timeout: number },
  done?: (env: Environment) => boolean,
): Promise<Environment> {
  const { waitForOutcome } = await sre()
  return await waitForOutcome(kube, target, { timeoutMs: options.timeout, progress, ...(done ? { done } : {}) })
}

export function registerEnvironmentCommands(program: Command): void {
  // `berth status --context a --context b`: every --context given, for one table across clusters.
  const contexts: string[] = []
  common(
    program
      .command('status')
      .description('every Environment at a glance: pinned and applied version, digest, Ready, message, suspended'),
  )
    .argument('[env]', 'one Environment')
    .option('-A, --all-namespaces', 'every namespace')
    .option('--all-contexts', 'every context of the kubeconfig: one table across clusters (CLUSTER column)')
    .addOption(outputOption())
    .option('-w, --watch', 'print again whenever something changes (a watch, not polling), until interrupted')
    .on('option:context', (value: string) => contexts.push(value))
    .action(async (name: string | undefined, options: StatusOptions & { allContexts?: boolean }) => {
      if (options.allContexts || contexts.length > 1) {
        if (options.watch) throw new UsageError('Usage', '--watch follows one cluster: give one --context')
        await statusAcross(options.allContexts ? undefined : contexts, name, options)
        return
      }
      const { kube, namespace } = await connect(options)
      const { getEnvironment, watchEnvironments } = await sre()
      const { API_VERSION, KIND } = await import('../api/environment.ts')
      const scope = options.allNamespaces ? {} : { namespace }
      if (!options.watch) {
        const envs = name
          ? [await getEnvironment(kube, namespace, name)]
          : await kube.list<Environment>(API_VERSION, KIND, scope)
        await printStatus(await summaries(envs), name, options, namespace)
        return
      }
      if (name) await getEnvironment(kube, namespace, name)
      const stop = new AbortController()
      void firstSignal().then(() => stop.abort())
      let shown = ''
      await watchEnvironments(
        kube,
        { ...scope, ...(name ? { name } : {}) },
        (envs) => {
          void summaries([...envs].sort(byName)).then(async (rows) => {
            const text = JSON.stringify(rows)
            if (text === shown) return
            shown = text
            await printStatus(rows, name, options, namespace)
          })
          return undefined
        },
        stop.signal,
      )
    })

  common(program.command('promote').description('pin an Environment to a version, or to what another Environment proved'))
    .argument('<env>', 'the Environment to promote')
    .option('--to <version>', 'the version to pin')
    .option(
      '--from <env>',
      'pin the newest version that Succeeded on this Environment (the rule spec.promotion.from gates on); '
      + 'or, as <cluster>/<namespace>/<name>, the highest version that identity attested healthy',
    )
    .option(
      '--key <cosign.pub>',
      'with --from <cluster>/<ns>/<name>: a trusted key (repeatable); default the Secret spec.promotion.attested names',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option('--wait', 'block until Ready (exit 0) or failure (exit non-zero), printing progress')
    .option('--timeout <duration>', 'how long --wait waits (30s, 5m, 1h)', duration, 300_000)
    .option(
      '--file <environment.yaml>',
      'GitOps mode: edit the pin in this file (comments kept) and commit it, instead of the cluster',
    )
    .option(
      '--dry-run',
      'print what would change in the cluster (created, changed with fields, pruned), computed server-side; change nothing',
    )
    .option('--registry-config <file>', 'credentials for --dry-run to pull the artifact (default: oras/Docker lookup)')
    .option('--override', 'land it past windows, freezes and approvals (the berth-override role; recorded)')
    .option('--reason <text>', 'with --override: why, kept in history, Events and notifications')
    .addOption(outputOption())
    .action(
      async (
        name: string,
        options: Common & Printing & {
          to?: string
          from?: string
          key: string[]
          wait?: boolean
          timeout: number
          file?: string
          dryRun?: boolean
          registryConfig?: string
          override?: boolean
          reason?: string
        },
      ) => {
        if (options.override && !options.reason) throw new UsageError('Usage', '--override needs --reason: it is on record')
        if ((options.to === undefined) === (options.from === undefined))
          throw new UsageError('Usage', 'give exactly one of --to <version> or --from <env>')
        if (options.file !== undefined && options.to !== undefined) {
          const { promoteInFile } = await import('./gitops.ts')
          const { before, commit } = await promoteInFile(options.file, name, { version: options.to, digest: null })
          const result = { file: options.file, name, from: before, to: options.to, commit }
          await print(options.output, result, () =>
            `${options.file ?? ''}: promote ${name} ${before || '(none)'} → ${options.to ?? ''} (commit ${commit.slice(0, 12)})\n`,
          )
          return
        }
        const { kube, namespace } = await connect(options)
        const { getEnvironment, change, whoAmI } = await sre()
        const env = await getEnvironment(kube, namespace, name)
        let pin: { version: string; digest: string | null }
        const { isIdentity, pinFromAttestations } = await import('../reconciler/promote/attested.ts')
        if (options.from !== undefined && isIdentity(options.from)) {
          const { readFile } = await import('node:fs/promises')
          const keys = await Promise.all(options.key.map(async (file) => ({ name: file, pem: await readFile(file, 'utf8') })))
          pin = await pinFromAttestations(kube, env, options.from, { keys, registryConfig: options.registryConfig })
        } else if (options.from !== undefined) {
          const { pinFromUpstream } = await import('../reconciler/promote/choose.ts')
          const chosen = pinFromUpstream(await getEnvironment(kube, namespace, options.from), env)
          if (chosen.note) warn(chosen.note)
          pin = { version: chosen.version, digest: chosen.digest }
        } else {
          pin = { version: options.to ?? '', digest: null }
        }
        const { checkPublished } = await import('../reconciler/promote/check.ts')
        const wanted = { version: pin.version, digest: pin.digest ?? undefined }
        await checkPublished(kube, env, wanted, options.registryConfig, warn)
        const before = spec(env).version ?? ''
        if (options.dryRun) {
          const { planPromotion } = await import('../reconciler/apply/plan.ts')
          const { cliCacheDir } = await import('./diff.ts')
          const access = options.registryConfig ? { registryConfig: options.registryConfig } : {}
          const plan = await planPromotion(kube, env, wanted, access, cliCacheDir())
          const { formatDiff } = await import('../shared/artifact-diff.ts')
          await print(options.output, { namespace, name, from: before, ...plan }, () => {
            // First what the release changes (artifact to artifact), then what the cluster would (server-side plan).
            const running = env.status?.lastAppliedVersion ?? ''
            const diff = plan.diff ? `artifact diff ${running} → ${plan.version}, ${formatDiff([plan.diff])}` : ''
            const lines = [
              `${namespace}/${name}: ${before || '(none)'} → ${plan.version} (${plan.digest}), dry run: nothing changed`,
              ...plan.created.map((o) => `  + ${o}`),
              ...plan.changed.map((c) => `  ~ ${c.object}: ${c.fields.join(', ')}`),
              ...plan.pruned.map((o) => `  - ${o}`),
              `${plan.created.length} to create, ${plan.changed.length} to change, ${plan.pruned.length} to prune`,
            ]
            return `${diff}${lines.join('\n')}\n`
          })
          return
        }
        if (options.file !== undefined) {
          const { promoteInFile } = await import('./gitops.ts')
          const edited = await promoteInFile(options.file, name, pin)
          const { before: from, commit } = edited
          const result = { file: options.file, name, from, to: pin.version, digest: pin.digest, commit }
          await print(options.output, result, () =>
            `${options.file ?? ''}: promote ${name} ${edited.before || '(none)'} → ${pin.version} (commit ${edited.commit.slice(0, 12)})\n`,
          )
          return
        }
        const overriding = options.override
          ? { [OVERRIDE.version]: pin.version, [OVERRIDE.reason]: options.reason ?? '' }
          : { [OVERRIDE.version]: null, [OVERRIDE.reason]: null }
        const patched = await change(kube, namespace, name, options.override ? 'override' : 'promote', {
          metadata: { annotations: { [PROMOTED_BY]: await whoAmI(kube), ...overriding } },
          spec: pin,
        })
        const result: Record<string, unknown> = { namespace, name, from: before, to: pin.version, digest: pin.digest }
        if (options.output === 'table') {
          process.stdout.write(`${namespace}/${name}: ${before || '(none)'} → ${pin.version}${pin.digest ? ` (${pin.digest})` : ''}\n`)
        }
        if (options.wait) {
          const generation = patched.metadata.generation ?? 0
          const done = await waited(kube, { namespace, name, generation }, options)
          result.ready = { version: done.status?.lastAppliedVersion, digest: done.status?.lastAppliedDigest }
          if (options.output === 'table') {
            process.stdout.write(`${namespace}/${name}: Ready on ${done.status?.lastAppliedVersion ?? ''}\n`)
          }
        }
        if (options.output !== 'table') await print(options.output, result, () => '')
      },
    )

  common(program.command('rollback').description('re-pin the last version that was Ready before the current one'))
    .argument('<env>', 'the Environment')
    .option('--to <version>', 'a specific earlier version from history')
    .option('--wait', 'block until Ready or failure, printing progress')
    .option('--timeout <duration>', 'how long --wait waits (30s, 5m, 1h)', duration, 300_000)
    .addOption(outputOption())
    .action(async (name: string, options: Common & Printing & { to?: string; wait?: boolean; timeout: number }) => {
      const { kube, namespace } = await connect(options)
      const { getEnvironment, change, whoAmI } = await sre()
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
        metadata: { annotations: { [PROMOTED_BY]: await whoAmI(kube) } },
        spec: { version: target.version, digest: target.digest },
      })
      const result: Record<string, unknown> = { namespace, name, from: current ?? '', to: target.version, digest: target.digest }
      if (options.output === 'table') {
        process.stdout.write(`${namespace}/${name}: rolled back ${current ?? '(none)'} → ${target.version} (${target.digest})\n`)
      }
      if (options.wait) {
        const done = await waited(kube, { namespace, name, generation: patched.metadata.generation ?? 0 }, options)
        result.ready = { version: done.status?.lastAppliedVersion, digest: done.status?.lastAppliedDigest }
      }
      if (options.output !== 'table') await print(options.output, result, () => '')
    })

  common(program.command('suspend').description('stop every change to an Environment (incidents)'))
    .argument('<env>', 'the Environment')
    .requiredOption('--reason <text>', 'why, shown in status and events')
    .addOption(outputOption())
    .action(async (name: string, options: Common & Printing & { reason: string }) => {
      const { kube, namespace } = await connect(options)
      const { getEnvironment, change, whoAmI } = await sre()
      await getEnvironment(kube, namespace, name)
      const by = await whoAmI(kube)
      const at = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')
      await change(kube, namespace, name, 'suspend', {
        metadata: { annotations: { [SUSPENDED.reason]: options.reason, [SUSPENDED.by]: by, [SUSPENDED.at]: at } },
        spec: { suspend: true },
      })
      const result = { namespace, name, suspended: true, by, at, reason: options.reason }
      await print(options.output, result, () => `${namespace}/${name}: suspended by ${by} at ${at}: ${options.reason}\n`)
    })

  common(program.command('resume').description('let the reconciler change an Environment again'))
    .argument('<env>', 'the Environment')
    .addOption(outputOption())
    .action(async (name: string, options: Common & Printing) => {
      const { kube, namespace } = await connect(options)
      const { getEnvironment, change, whoAmI } = await sre()
      await getEnvironment(kube, namespace, name)
      await change(kube, namespace, name, 'resume', {
        metadata: { annotations: { [SUSPENDED.reason]: null, [SUSPENDED.by]: null, [SUSPENDED.at]: null } },
        spec: { suspend: false },
      })
      const by = await whoAmI(kube)
      await print(options.output, { namespace, name, suspended: false, by }, () => `${namespace}/${name}: resumed by ${by}\n`)
    })

  common(program.command('freeze').description('hold every new version of the Environments selected (stop the line)'))
    .argument('[env]', 'the Environment (or -A / -l)')
    .option('-A, --all-namespaces', 'every Environment, in every namespace')
    .option('-l, --selector <selector>', 'the Environments with these labels (app=shop,tier=prod)')
    .requiredOption('--reason <text>', 'why, shown in status, history, events and notifications')
    .option('--until <time|duration>', 'when the freeze ends by itself: an RFC 3339 time, or a duration from now (2h)')
    .addOption(outputOption())
    .action(async (name: string | undefined, options: Selecting & { reason: string; until?: string }) => {
      const until = options.until === undefined ? undefined : untilOf(options.until)
      await changeSelected(name, options, 'freeze', async (kube) => {
        const by = await (await sre()).whoAmI(kube)
        const at = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')
        return {
          patch: {
            metadata: {
              annotations: {
                [FROZEN.reason]: options.reason,
                [FROZEN.by]: by,
                [FROZEN.at]: at,
                [FROZEN.until]: until ?? null,
              },
            },
          },
          said: (key) => `${key}: frozen by ${by} at ${at}${until ? ` until ${until}` : ''}: ${options.reason}`,
          result: { frozen: true, by, at, reason: options.reason, ...(until ? { until } : {}) },
        }
      })
    })

  common(program.command('unfreeze').description('let new versions land again on the Environments selected'))
    .argument('[env]', 'the Environment (or -A / -l)')
    .option('-A, --all-namespaces', 'every Environment, in every namespace')
    .option('-l, --selector <selector>', 'the Environments with these labels')
    .addOption(outputOption())
    .action(async (name: string | undefined, options: Selecting) => {
      await changeSelected(name, options, 'unfreeze', async (kube) => {
        const by = await (await sre()).whoAmI(kube)
        const none = { [FROZEN.reason]: null, [FROZEN.by]: null, [FROZEN.at]: null, [FROZEN.until]: null }
        return {
          patch: { metadata: { annotations: none } },
          said: (key) => `${key}: unfrozen by ${by}`,
          result: { frozen: false, by },
        }
      })
    })

  common(
    program
      .command('approve')
      .description('approve one version of an Environment, by digest, in your own name (spec.promotion.approvals)'),
  )
    .argument('<env>', 'the Environment')
    .requiredOption('--version <version>', 'the version approved (its digest is taken from the pin or the registry)')
    .option('--reason <text>', 'why, kept with the approval')
    .option('--registry-config <file>', 'credentials to look the digest up in the registry')
    .addOption(outputOption())
    .action(async (name: string, options: Common & Printing & Approving) => {
      const { kube, namespace } = await connect(options)
      const { getEnvironment, whoAmI } = await sre()
      const { approve } = await import('../reconciler/promote/approve.ts')
      const env = await getEnvironment(kube, namespace, name)
      const approval = await approve(kube, env, await whoAmI(kube), options)
      const { spec: a } = approval
      await print(options.output, approval, () => `${namespace}/${name}: ${a.version} (${a.digest}) approved by ${a.approver}\n`)
    })

  common(program.command('reconcile').description('ask the reconciler for a pass now'))
    .argument('<env>', 'the Environment')
    .option('--wait', 'block until the reconciler has handled the request, printing progress')
    .option('--timeout <duration>', 'how long --wait waits (30s, 5m, 1h)', duration, 120_000)
    .addOption(outputOption())
    .action(async (name: string, options: Common & Printing & { wait?: boolean; timeout: number }) => {
      const { kube, namespace } = await connect(options)
      const { getEnvironment, change } = await sre()
      await getEnvironment(kube, namespace, name)
      const at = new Date().toISOString()
      const patched = await change(kube, namespace, name, 'request a pass of', {
        metadata: { annotations: { [RECONCILE_REQUESTED_AT]: at } },
      })
      const result: Record<string, unknown> = { namespace, name, requestedAt: at }
      if (options.output === 'table') process.stdout.write(`${namespace}/${name}: reconcile requested at ${at}\n`)
      if (options.wait) {
        const target = { namespace, name, generation: patched.metadata.generation ?? 0 }
        const env = await waited(kube, target, options, (e) => e.status?.lastHandledReconcileAt === at)
        result.ready = { version: env.status?.lastAppliedVersion, digest: env.status?.lastAppliedDigest }
        if (options.output === 'table') {
          process.stdout.write(`${namespace}/${name}: handled; Ready on ${env.status?.lastAppliedVersion ?? ''}\n`)
        }
      }
      if (options.output !== 'table') await print(options.output, result, () => '')
    })

  common(program.command('history').description('the applications of an Environment: version, digest, when, result'))
    .argument('<env>', 'the Environment')
    .addOption(outputOption())
    .action(async (name: string, options: Common & Printing) => {
      const { kube, namespace } = await connect(options)
      const { getEnvironment } = await sre()
      const env = await getEnvironment(kube, namespace, name)
      const history = env.status?.history ?? []
      await print(options.output, history, () =>
        history.length === 0
          ? `${namespace}/${name} has no history yet\n`
          : table([
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
