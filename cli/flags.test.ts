import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { count, duration } from './flags.ts'

const root = join(import.meta.dirname, '..')

async function berth(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(root, 'bin/berth.js'), ...args], {
      env: { ...process.env, KUBECONFIG: '/nonexistent' },
    })
    return { code: 0, stdout, stderr }
  } catch (error: unknown) {
    const e = error as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

describe('flag values as kubectl users expect them', () => {
  it('durations take units: 5m is five minutes; a bare number or a word is refused', () => {
    expect(duration('5m')).toBe(300_000)
    expect(duration('1h30m')).toBe(5_400_000)
    expect(duration('500ms')).toBe(500)
    expect(() => duration('5')).toThrow(/not a duration; use a number with a unit/)
    expect(() => duration('x')).toThrow(/not a duration/)
  })

  it('whole numbers refuse anything else', () => {
    expect(count(1)('4')).toBe(4)
    for (const bad of ['x', '4.5', '-1', '0', '']) expect(() => count(1)(bad)).toThrow(/whole number of at least 1/)
  })

  it('a bad value exits 2 with a usage error naming the flag, before anything runs', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['promote', 'prod', '--to', '1.0.0', '--wait', '--timeout', 'x'], /--timeout <duration>.*"x" is not a duration/],
      [['promote', 'prod', '--to', '1.0.0', '--timeout', '300'], /"300" is not a duration/],
      [['reconcile', 'prod', '--timeout', '5'], /"5" is not a duration/],
      [['reconciler', '--concurrency', 'x'], /--concurrency <n>.*"x" is not a whole number/],
      [['reconciler', '--lease-duration', 'soon'], /"soon" is not a duration/],
      [['install', '--replicas', 'two'], /"two" is not a whole number/],
      [['status', '-o', 'wide'], /-o, --output <format>.*Allowed choices are table, json, yaml/],
      [['history', 'prod', '-o', 'xml'], /Allowed choices are table, json, yaml/],
    ]
    for (const [args, message] of cases) {
      const { code, stderr } = await berth(args)
      expect({ args, code }).toEqual({ args, code: 2 })
      expect(stderr).toMatch(message)
    }
  })

  it('every command that prints takes -o table|json|yaml', async () => {
    for (const command of ['status', 'history', 'promote', 'rollback', 'suspend', 'resume', 'reconcile']) {
      const { stdout } = await berth([command, '--help'])
      expect({ command, help: stdout }).toEqual({ command, help: expect.stringMatching(/-o, --output <format>.*choices: "table", "json", "yaml"/) })
    }
  })
})

describe('berth completion', () => {
  const complete = async (words: string[]): Promise<string[]> => {
    const script = (await berth(['completion', 'bash'])).stdout
    const program = `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _berth; echo "\${COMPREPLY[@]}"`
    const { stdout } = await promisify(execFile)('bash', ['-c', program])
    return stdout.trim().split(/\s+/)
  }

  it('bash: commands, their flags and -o values, from the commands themselves', async () => {
    expect(await complete(['berth', 'pro'])).toEqual(['promote'])
    expect(await complete(['berth', 'promote', 'prod', '--ti'])).toEqual(['--timeout'])
    expect(await complete(['berth', 'status', '-o', ''])).toEqual(['table', 'json', 'yaml'])
  })

  it('zsh and fish scripts parse in their shells; an unknown shell is a usage error', async () => {
    for (const shell of ['zsh', 'fish']) {
      const { stdout } = await berth(['completion', shell])
      await promisify(execFile)(shell, ['-n', '-c', stdout]).catch((error: unknown) => {
        throw new Error(`${shell} -n refused the script: ${String(error)}`)
      })
      expect(stdout).toContain('promote')
    }
    expect(await berth(['completion', 'tcsh'])).toMatchObject({ code: 2, stderr: expect.stringContaining('use bash, zsh or fish') })
  })
})
