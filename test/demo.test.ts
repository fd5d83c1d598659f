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
    // `berth status --all-contexts`: CLUSTER NAMESPACE NAME PINNED APPLIED DIGEST READY …
    const row = (text: string, cluster: string, env: string): string =>
      text
        .split('\n')
        .filter((l) => new RegExp(`^${cluster}\\s+shop\\s+${env}\\s`).test(l))
        .at(-1) ?? ''
    const applied = (version: string, ready: string): RegExp =>
      new RegExp(`^eu-\\d\\s+shop\\s+\\S+\\s+\\S+\\s+${version.replaceAll('.', '\\.')}\\s+\\w{12}\\s+${ready}`)
    expect(before).toMatch(/\nCLUSTER\s+NAMESPACE\s+NAME\s+PINNED\s+APPLIED/)
    expect(row(before, 'eu-1', 'dev')).toMatch(applied('1.1.0', 'True'))
    expect(row(before, 'eu-1', 'staging')).toMatch(applied('1.0.0', 'True'))
    expect(row(before, 'eu-2', 'prod')).toMatch(applied('1.0.0', 'True'))
    for (const [cluster, env] of [['eu-1', 'platform'], ['eu-1', 'dev'], ['eu-1', 'staging'], ['eu-2', 'platform'], ['eu-2', 'prod']])
      expect(row(after, cluster ?? '', env ?? ''), `${cluster ?? ''} ${env ?? ''}`).toMatch(applied('1.1.0', 'True'))
    // prod in eu-2 took what staging in eu-1 attested: the attestation, verified with staging's public key.
    expect(main).toMatch(/eu-1\/shop\/staging\s+1\.1\.0\s+healthy\s+\S+\s+\S+\s+\S*cosign\.pub \(sha256:[0-9a-f]{16}\)/)
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
    expect(demo.stderr).toContain('prod is already pinned to 1.1.0, the highest version eu-1/shop/staging attested healthy')
    expect(failing.match(/\(exit 1, as expected\)/g)).toHaveLength(2)
    expect(row(failing, 'eu-2', 'prod')).toMatch(applied('1.1.0', 'True'))
    expect(row(failing, 'eu-1', 'staging')).toMatch(applied('1.1.0', 'False'))
    expect(failing).toMatch(/1\.2\.0\s+\w{12}\s+berth-admin\s+\S+\s+\S+\s+HealthCheckFailed\n1\.1\.0\s+\w{12}\s+berth \(automatic rollback\)/)
    // prod's history: 1.0.0, created by the admin (the apiserver's admission policy records who), then the promotion to
    // 1.1.0 by the admin who promoted it.
    expect(after).toMatch(
      /1\.0\.0\s+\w{12}\s+berth-admin\s+\S+\s+\S+\s+Succeeded\n1\.1\.0\s+\w{12}\s+berth-admin\s+\S+\s+\S+\s+Succeeded/,
    )

    const grounds = [/up in (\S+):/.exec(out)?.[1] ?? '', /and in (\S+):/.exec(out)?.[1] ?? '']
    for (const groundDir of grounds) {
      expect(groundDir).toMatch(/berth-ground-/)
      const left = await execa('pgrep', ['-f', groundDir], { reject: false })
      expect(left.stdout, 'processes still running from the demo grounds').toBe('')
    }
  }, 600_000)
})
