import { execFile } from 'node:child_process'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const run = promisify(execFile)
const root = join(import.meta.dirname, '..')

const FILE = `# Environments of the shop, promoted by SREs.
apiVersion: berth.dev/v1alpha1
kind: Environment
metadata:
  name: staging
  namespace: shop
spec:
  version: 1.3.0   # staging follows releases closely
---
apiVersion: berth.dev/v1alpha1
kind: Environment
metadata:
  name: prod   # the one that matters
  namespace: shop
spec:
  source:
    repository: oci://ghcr.io/acme/shop-config
  # pinned by hand after the change review
  version: 1.2.0
  digest: sha256:${'a'.repeat(64)}
  interval: 10m
`

async function repo(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-gitops-'))
  await run('git', ['init', '--quiet', dir])
  await run('git', ['-C', dir, 'config', 'user.email', 'sre@example.com'])
  await run('git', ['-C', dir, 'config', 'user.name', 'SRE'])
  await writeFile(join(dir, 'environments.yaml'), FILE)
  await run('git', ['-C', dir, 'add', '.'])
  await run('git', ['-C', dir, 'commit', '--quiet', '-m', 'initial'])
  return dir
}

describe('berth promote --file (GitOps mode)', () => {
  it('edits only the pin, keeps comments and formatting, drops the stale digest, and commits', async () => {
    const dir = await repo()
    const file = join(dir, 'environments.yaml')
    const { stdout } = await run(process.execPath, [
      join(root, 'bin/berth.js'),
      'promote',
      'prod',
      '--to',
      '1.3.0',
      '--file',
      file,
    ])
    expect(stdout).toMatch(/environments\.yaml: promote prod 1\.2\.0 → 1\.3\.0 \(commit [a-f0-9]{12}\)/)
    expect(await readFile(file, 'utf8')).toBe(
      FILE.replace('  version: 1.2.0\n', '  version: 1.3.0\n').replace(`  digest: sha256:${'a'.repeat(64)}\n`, ''),
    )
    const log = await run('git', ['-C', dir, 'log', '-1', '--format=%s'])
    expect(log.stdout.trim()).toBe('promote prod 1.2.0 → 1.3.0')
    expect((await run('git', ['-C', dir, 'status', '--porcelain'])).stdout).toBe('')
  })

  it('refuses an Environment the file does not have, and a file outside Git, changing nothing', async () => {
    const dir = await repo()
    const failed = await run(process.execPath, [
      join(root, 'bin/berth.js'),
      'promote',
      'dev',
      '--to',
      '1.3.0',
      '--file',
      join(dir, 'environments.yaml'),
    ]).catch((e: unknown) => e as { code: number; stderr: string })
    expect(failed).toMatchObject({ code: 2, stderr: expect.stringContaining('has no Environment named dev') })

    const loose = await mkdtemp(join(tmpdir(), 'berth-nogit-'))
    await writeFile(join(loose, 'e.yaml'), FILE)
    const outside = await run(process.execPath, [
      join(root, 'bin/berth.js'),
      'promote',
      'prod',
      '--to',
      '1.3.0',
      '--file',
      join(loose, 'e.yaml'),
    ]).catch((e: unknown) => e as { code: number; stderr: string })
    expect(outside).toMatchObject({ code: 2, stderr: expect.stringContaining('is not inside a Git checkout') })
    expect(await readFile(join(loose, 'e.yaml'), 'utf8')).toBe(FILE)
  })
})
