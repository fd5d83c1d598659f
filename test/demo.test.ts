/**
 * `npm run demo` is the quickstart: run it whole (its own ground, reconciler and
 * Environments) and check what it shows and that it leaves nothing running.
 */
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import { ROOT } from './support/ground.ts'

describe('npm run demo', () => {
  it('publishes, installs, promotes staging then prod, shows a failing release refused, and stops everything', async () => {
    const demo = await execa(process.execPath, ['examples/demo.ts'], {
      cwd: ROOT,
      reject: false,
      env: { NO_COLOR: '1' },
    })
    expect(demo.exitCode, demo.stderr).toBe(0)
    const out = demo.stdout
    const [main = '', failing = ''] = out.split('\n== 6.')
    const [before = '', after = ''] = main.split('\n== after')
    const row = (text: string, env: string): string =>
      text
        .split('\n')
        .filter((l) => l.startsWith(`${env} `))
        .at(-1) ?? ''
    expect(row(before, 'dev')).toMatch(/^dev\s+1\.1\.0\s+\w{12}\s+True/)
    expect(row(before, 'staging')).toMatch(/^staging\s+1\.0\.0\s+\w{12}\s+True/)
    expect(row(before, 'prod')).toMatch(/^prod\s+1\.0\.0\s+\w{12}\s+True/)
    for (const env of ['platform', 'dev', 'staging', 'prod'])
      expect(row(after, env), env).toMatch(new RegExp(`^${env}\\s+1\\.1\\.0\\s+\\w{12}\\s+True`))
    expect(after).toContain('ghcr.io/acme/shop:2.5.0')
    // berth itself ran as pods of its own image on the real node.
    const [, installed = ''] = main.split('\n== 3.')
    expect(installed).toMatch(/deployment "berth-reconciler" successfully rolled out/)
    expect(installed).toMatch(/berth-reconciler-\S+\s+1\/1\s+Running\s+\d+\s+\S+\s+[\d.]+\s+berth-node-0/)
    // Rolled out for real: the controllers made the pods, kwok's nodes run them.
    expect(after).toMatch(/shop-\S+\s+1\/1\s+Running/)
    // The failing release: staging rolled back on its own, prod never given 1.2.0.
    // berth's refusals go to stderr.
    expect(demo.stderr).toContain('1.2.0 failed its health check and was rolled back; running 1.1.0')
    expect(demo.stderr).toContain('the newest version that Succeeded on staging; staging\'s 1.2.0 has not Succeeded there')
    expect(failing.match(/\(exit 1, as expected\)/g)).toHaveLength(2)
    expect(row(failing, 'prod')).toMatch(/^prod\s+1\.1\.0\s+\w{12}\s+True/)
    expect(row(failing, 'staging')).toMatch(/^staging\s+1\.1\.0\s+\w{12}\s+False/)
    expect(failing).toMatch(/1\.2\.0\s+\w{12}\s+berth-admin\s+\S+\s+\S+\s+HealthCheckFailed\n1\.1\.0\s+\w{12}\s+berth \(automatic rollback\)/)
    // prod's history: 1.0.0 then the promotion to 1.1.0, by the admin who promoted it.
    expect(after).toMatch(
      /1\.0\.0\s+\w{12}\s+-\s+\S+\s+\S+\s+Succeeded\n1\.1\.0\s+\w{12}\s+berth-admin\s+\S+\s+\S+\s+Succeeded/,
    )

    const groundDir = /up in (\S+):/.exec(out)?.[1] ?? ''
    expect(groundDir).toMatch(/berth-ground-/)
    const left = await execa('pgrep', ['-f', groundDir], { reject: false })
    expect(left.stdout, 'processes still running from the demo ground').toBe('')
  }, 600_000)
})
