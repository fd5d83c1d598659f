/**
 * berth as users install it: `npm pack`, `npm install -g` into a temporary prefix, then the
 * installed `kubectl berth` (found by kubectl on PATH by its exact name) against the ground, and
 * the clear message an older Node gets.
 */
import { execFile } from 'node:child_process'
import { access, mkdir, readdir, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { API_VERSION, KIND } from '../api/environment.ts'
import { installCrd } from './support/environments.ts'
import { failureOf, type ProcessFailure } from './support/failure.ts'
import { ROOT, useGround } from './support/ground.ts'

const g = useGround(import.meta.url)
const run = promisify(execFile)

describe('the npm package', () => {
  it(
    'packs what users need, installs globally, and runs as berth and as kubectl berth',
    { timeout: 240_000 },
    async () => {
      const packed = join(g.scratch(), 'packed')
      const prefix = join(g.scratch(), 'prefix')
      // npm and the Node it runs: the project's own Node 24 (node@24), as the workflow sets up.
      const node24 = dirname(process.execPath)
      const env = { ...process.env, PATH: `${node24}:${process.env.PATH ?? ''}`, npm_config_loglevel: 'error' }
      await mkdir(packed)
      // prepack emits dist/ into the checkout (ignored by Git and the linters); the checkout keeps running its sources.
      await run('npm', ['pack', '--pack-destination', packed], { cwd: ROOT, env }).finally(() =>
        rm(join(ROOT, 'dist'), { recursive: true, force: true }),
      )
      const [tarball] = await readdir(packed)
      const listing = (await run('tar', ['tzf', join(packed, tarball ?? '')])).stdout.split('\n')
      expect(listing).toContain('package/dist/cli/main.js')
      expect(listing).toContain('package/bin/kubectl-berth.js')
      // Sources, tests and the test ground stay out.
      expect(listing.filter((f) => f.endsWith('.ts') || f.startsWith('package/test/'))).toEqual([])

      await run(
        'npm',
        ['install', '--global', '--prefix', prefix, '--no-audit', '--no-fund', join(packed, tarball ?? '')],
        {
          env,
        },
      )
      const bin = join(prefix, 'bin')
      await access(join(bin, 'kubectl-berth'))
      const installed = {
        ...env,
        PATH: `${bin}:${node24}:${dirname(g.ground.parts.kubectl)}:/usr/bin:/bin`,
        KUBECONFIG: g.ground.kubeconfig,
      }

      await installCrd(g.kube())
      await g.kube().apply({
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name: 'packaged', namespace: g.namespace },
        spec: { source: { repository: 'oci://registry.example/app' }, version: '1.0.0', path: 'app' },
      })
      const { stdout } = await run(g.ground.parts.kubectl, ['berth', 'status', '-A'], { env: installed })
      expect(stdout).toMatch(/NAMESPACE/)
      expect(stdout).toContain(g.namespace)
      expect(stdout).toContain('packaged')
      expect((await run(join(bin, 'berth'), ['--version'], { env: installed })).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/)

      // A workstation whose `node` is older (this machine's own Node 20): the installed command says so plainly.
      const old = { ...installed, PATH: `${bin}:/usr/bin:/bin` }
      const failed = await failureOf<ProcessFailure>(run(join(bin, 'berth'), ['--version'], { env: old }))
      expect(failed.stderr).toMatch(/berth: Node 2\d\.\d+\.\d+ is too old; berth needs Node >= 22\.18/)
    },
  )
})
