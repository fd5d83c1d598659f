/**
 * Flag values as kubectl users expect them: durations with units (`30s`, `5m`, `1h30m`), whole
 * numbers that refuse anything else, `-o table|json|yaml`, and kubectl's connection flags. A bad
 * value is a usage error (exit 2) that names the flag and shows a good value.
 */
import { type Command, InvalidArgumentError, Option } from 'commander'
import { parseCidr } from '../shared/cidr.ts'
import { DURATION, durationMs } from '../shared/duration.ts'

/** A duration flag's value in milliseconds; `5m` is five minutes, a bare `5` is refused (which unit?). */
export function duration(value: string): number {
  if (!DURATION.test(value)) {
    throw new InvalidArgumentError(`"${value}" is not a duration; use a number with a unit: 30s, 5m, 1h, 1h30m, 500ms`)
  }
  return durationMs(value)
}

/** A whole-number flag of at least `min`. */
export function count(min: number): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value) || Number(value) < min) {
      throw new InvalidArgumentError(`"${value}" is not a whole number of at least ${min}`)
    }
    return Number(value)
  }
}

/** A repeatable CIDR flag (`10.0.0.0/8`, `fd00::/8`): each use adds one; anything else is refused. */
export function cidrs(value: string, previous: readonly string[] | undefined): string[] {
  if (!parseCidr(value)) throw new InvalidArgumentError(`"${value}" is not a CIDR; write it as 10.0.0.0/8 or fd00::/8`)
  return repeated(value, previous)
}

/** A repeatable flag: each use adds one value. */
export function repeated(value: string, previous: readonly string[] | undefined): string[] {
  return [...(previous ?? []), value]
}

export const OUTPUTS = ['table', 'json', 'yaml'] as const
export type Output = (typeof OUTPUTS)[number]

/** `-o table|json|yaml`; any other value is refused by the parser, before anything runs. */
export function outputOption(): Option {
  return new Option('-o, --output <format>', 'output format').choices(OUTPUTS).default('table')
}

/** Print `value` as JSON or YAML, or `text` for a person. */
export async function print(output: Output, value: unknown, text: () => string): Promise<void> {
  if (output === 'json') process.stdout.write(`${JSON.stringify(value, null, 2)}\n`)
  else if (output === 'yaml') process.stdout.write((await import('../shared/yaml-writer.ts')).writeYaml(value))
  else process.stdout.write(text())
}

export type Connection = {
  kubeconfig?: string
  context?: string
  namespace?: string
  as?: string
  asGroup?: string[]
}

/** kubectl's connection flags: --kubeconfig, --context, -n, --as, --as-group. */
export function connectionFlags(command: Command): Command {
  return command
    .option('--kubeconfig <file>', 'kubeconfig (default $KUBECONFIG or ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context')
    .option('-n, --namespace <ns>', 'namespace (default: the context\'s namespace, else "default")')
    .option('--as <user>', 'act as this user (impersonation, as kubectl --as)')
    .option('--as-group <group>', 'act with this group; repeat for more (needs --as)', repeated)
}

/** The kubeconfig target the connection flags name. */
export function targetOf(options: Connection): {
  kubeconfig?: string
  context?: string
  as?: string
  asGroups?: string[]
} {
  return {
    ...(options.kubeconfig ? { kubeconfig: options.kubeconfig } : {}),
    ...(options.context ? { context: options.context } : {}),
    ...(options.as ? { as: options.as } : {}),
    ...(options.asGroup ? { asGroups: options.asGroup } : {}),
  }
}

/** Rows as kubectl prints them: columns padded to their widest cell, three spaces apart, the last one not padded. */
export function table(rows: ReadonlyArray<readonly string[]>): string {
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
