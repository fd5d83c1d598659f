/**
 * A composite GitHub Action's steps run as a runner runs them: each `run` with bash, its `env` with `${{ … }}`
 * replaced by the inputs, earlier steps' outputs, the action's path and the given `github.*` context, and the
 * GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files. Steps that `uses:` another action are left out (the caller provides
 * what they would set up, on PATH), as are the steps named in `skip`.
 */
import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { parse } from 'yaml'

const run = promisify(execFile)

export type Step = { name?: string; id?: string; uses?: string; run?: string; env?: Record<string, string> }
export type Action = {
  inputs: Record<string, { default?: string }>
  outputs: Record<string, { value: string }>
  runs: { using: string; steps: Step[] }
}

export async function readAction(file: string): Promise<Action> {
  return parse(await readFile(file, 'utf8')) as Action
}

export type RunOptions = {
  /** Where the steps run and GITHUB_OUTPUT files go. */
  scratch: string
  inputs: Record<string, string>
  /** Values of `github.<name>` expressions (github.action_path is the action file's folder). */
  github?: Record<string, string>
  /** Prepended to PATH. */
  path?: readonly string[]
  env?: Record<string, string>
  skip?: readonly string[]
}

export async function runCompositeAction(
  file: string,
  options: RunOptions,
): Promise<{ outputs: Record<string, string>; summary: string }> {
  const spec = await readAction(file)
  const values: Record<string, string> = {}
  for (const [name, input] of Object.entries(spec.inputs)) values[name] = options.inputs[name] ?? input.default ?? ''
  const github: Record<string, string> = { action_path: dirname(file), ...options.github }
  const stepOutputs: Record<string, Record<string, string>> = {}
  const summary = join(options.scratch, `summary-${Math.random()}`)
  await writeFile(summary, '')
  const expand = (text: string): string =>
    text.replace(/\$\{\{\s*([^}]+?)\s*\}\}/g, (_, expr: string) => {
      const context = /^github\.(\w+)$/.exec(expr)
      if (context && github[context[1] ?? ''] !== undefined) return github[context[1] ?? ''] ?? ''
      const input = /^inputs\.([\w-]+)$/.exec(expr)
      if (input) return values[input[1] ?? ''] ?? ''
      const output = /^steps\.([\w-]+)\.outputs\.([\w-]+)$/.exec(expr)
      if (output) return stepOutputs[output[1] ?? '']?.[output[2] ?? ''] ?? ''
      throw new Error(`the test does not know ${expr}`)
    })
  for (const step of spec.runs.steps) {
    if (step.uses || !step.run || options.skip?.includes(step.name ?? '')) continue
    const output = join(options.scratch, `output-${Math.random()}`)
    await writeFile(output, '')
    const env = Object.fromEntries(Object.entries(step.env ?? {}).map(([k, v]) => [k, expand(v)]))
    await run('bash', ['-e', '-c', step.run], {
      cwd: options.scratch,
      env: {
        ...process.env,
        ...options.env,
        PATH: [...(options.path ?? []), process.env.PATH ?? ''].join(':'),
        ...env,
        GITHUB_OUTPUT: output,
        GITHUB_STEP_SUMMARY: summary,
      },
    })
    if (step.id) {
      stepOutputs[step.id] = Object.fromEntries(
        (await readFile(output, 'utf8'))
          .split('\n')
          .filter((l) => l.includes('='))
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      )
    }
  }
  const outputs = Object.fromEntries(Object.entries(spec.outputs).map(([k, o]) => [k, expand(o.value)]))
  return { outputs, summary: await readFile(summary, 'utf8') }
}
