import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const root = join(import.meta.dirname, '..')
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version

async function berth(args: string[], bin = 'bin/berth.js'): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(root, bin), ...args])
    return { code: 0, stdout, stderr }
  } catch (error: unknown) {
    const e = error as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

describe('berth CLI shell', () => {
  it('prints its version from package.json', async () => {
    for (const flag of ['--version', '-v'])
      expect(await berth([flag])).toMatchObject({ code: 0, stdout: `${version}\n` })
  })

  it('prints help naming itself and exits 0', async () => {
    const { code, stdout } = await berth(['--help'])
    expect(code).toBe(0)
    expect(stdout).toMatch(/^Usage: berth /)
    expect(stdout).toContain('SREs promote')
  })

  it('berth install --crds-only prints every berth CRD and nothing else', async () => {
    const { code, stdout } = await berth(['install', '--crds-only'])
    expect(code).toBe(0)
    const kinds = [...stdout.matchAll(/^kind: (.+)$/gm)].map((m) => m[1])
    const names = [...stdout.matchAll(/^ {2}name: (.+)$/gm)].map((m) => m[1])
    expect(kinds).toEqual(['CustomResourceDefinition', 'CustomResourceDefinition', 'CustomResourceDefinition'])
    expect(names.sort()).toEqual(['approvals.berth.dev', 'environments.berth.dev', 'environmentsets.berth.dev'])
  })

  it('exits 2 with a hint on a usage error', async () => {
    const { code, stderr } = await berth(['--no-such-flag'])
    expect(code).toBe(2)
    expect(stderr).toContain('unknown option \'--no-such-flag\'')
    expect(stderr).toContain('--help')
  })

  it('names itself "kubectl berth" when run as the kubectl plugin', async () => {
    const { stdout } = await berth(['--help'], 'bin/kubectl-berth.js')
    expect(stdout).toMatch(/^Usage: kubectl berth /)
  })

  it('works as a real kubectl plugin found on PATH', async () => {
    // kubectl finds `kubectl-berth` on PATH, as npm's bin link names it; its shebang then
    // needs this Node first on PATH.
    const dir = await mkdtemp(join(tmpdir(), 'berth-plugin-'))
    try {
      await symlink(join(root, 'bin', 'kubectl-berth.js'), join(dir, 'kubectl-berth'))
      const env = { ...process.env, PATH: [dir, join(process.execPath, '..'), process.env.PATH].join(delimiter) }
      const listed = await promisify(execFile)('kubectl', ['plugin', 'list'], { env })
      expect(listed.stdout).toContain(join(dir, 'kubectl-berth'))
      expect((await promisify(execFile)('kubectl', ['berth', '--version'], { env })).stdout).toBe(`${version}\n`)
      expect((await promisify(execFile)('kubectl', ['berth', '--help'], { env })).stdout).toMatch(
        /^Usage: kubectl berth /,
      )
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
