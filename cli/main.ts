/**
 * berth's command line: `berth …` and, through the `kubectl-berth` plugin name, `kubectl berth …`.
 *
 * Commands register themselves on the program built here; this file owns the one top-level
 * catch that turns typed errors into a clear message and an exit code.
 */
import { basename } from 'node:path'
import { Command, CommanderError } from 'commander'
import { BerthError } from '../shared/errors.ts'
import { BERTH as pkg } from '../shared/package-info.ts'
import { registerCompletion } from './completion.ts'
import { registerDiff } from './diff.ts'
import { registerEnvironmentCommands } from './environments.ts'
import { registerPackage } from './package.ts'
import { registerPush, registerUnpublish } from './push.ts'
import { registerReconciler } from './reconciler.ts'
import { registerSigning } from './signing.ts'

export const EXIT = { ok: 0, failure: 1, usage: 2, internal: 70 } as const

/** The name the user typed: `kubectl berth` when run as a kubectl plugin. */
export function programName(argv1: string | undefined): string {
  return argv1 && basename(argv1).startsWith('kubectl-berth') ? 'kubectl berth' : 'berth'
}

export function buildProgram(name: string): Command {
  const program = new Command(name)
    .description(pkg.description)
    .version(pkg.version, '-v, --version', 'print the berth version')
    .helpOption('-h, --help', 'show help')
    .showHelpAfterError('(add --help for usage)')
    // `berth package --version 1.2.3` means the release version, not berth's own.
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) })
  registerPackage(program)
  registerPush(program)
  registerUnpublish(program)
  registerReconciler(program)
  registerSigning(program)
  registerDiff(program)
  registerEnvironmentCommands(program)
  registerCompletion(program)
  program.addHelpText(
    'after',
    `
Developers publish: CI packages rendered manifests into an immutable semver OCI artifact.
SREs promote: each Environment in the cluster pins a version, and the reconciler applies it.`,
  )
  return program
}

/** Run the CLI; resolves to the exit code. Never throws. */
export async function run(argv: readonly string[]): Promise<number> {
  // `berth … | head` closes the pipe early; that is the reader's choice, not a failure.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(EXIT.ok)
    throw error
  })
  const program = buildProgram(programName(argv[1]))
  try {
    await program.parseAsync([...argv])
    return EXIT.ok
  } catch (error: unknown) {
    return report(error)
  }
}

function report(error: unknown): number {
  if (error instanceof CommanderError) {
    // Commander has already printed help, the version or its own message.
    if (
      error.code === 'commander.helpDisplayed'
      || error.code === 'commander.version'
      || error.code === 'commander.help'
    )
      return EXIT.ok
    return EXIT.usage
  }
  if (error instanceof BerthError) {
    process.stderr.write(`berth: ${error.message}\n`)
    return error.exitCode
  }
  const message = error instanceof Error ? error.message : String(error)
  const detail = error instanceof Error && process.env.BERTH_DEBUG ? (error.stack ?? message) : message
  process.stderr.write(
    `berth: unexpected error: ${detail}\n(this is a bug in berth; run with BERTH_DEBUG=1 for the stack and report it)\n`,
  )
  return EXIT.internal
}

if (import.meta.main) {
  process.exitCode = await run(process.argv)
}
