/**
 * berth diff against the real registry: the example application's 1.0.0 → 1.1.0 (one image
 * tag), objects added and removed, a Secret whose value changed, and stable JSON.
 */
import { execFile } from 'node:child_process'
import { cp, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'
import { publish } from '../packager/publish.ts'
import { configMap, exampleRepo } from './support/config-repo.ts'
import { publishApp } from './support/environments.ts'
import { ROOT, useGround } from './support/ground.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'
const run = promisify(execFile)

describe('berth diff', () => {
  let example = ''
  let app = ''
  const berth = async (args: string[]): Promise<string> =>
    (await run(process.execPath, [join(ROOT, 'bin/berth.js'), ...args, '--plain-http'], { env: process.env })).stdout
  const secret = (value: string): object => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'db' },
    data: { password: Buffer.from(value).toString('base64'), user: Buffer.from('shop').toString('base64') },
  })

  beforeAll(async () => {
    const registry = g.ground.registries.plain.host
    example = `${registry}/${g.repository}/shop-config`
    const before = await exampleRepo(join(g.scratch(), 'shop-1.0.0'))
    const after = join(g.scratch(), 'shop-1.1.0')
    await cp(before, after, { recursive: true })
    const deployment = join(after, 'base', 'deployment.yaml')
    await writeFile(
      deployment,
      (await readFile(deployment, 'utf8')).replace('ghcr.io/acme/shop:2.4.1', 'ghcr.io/acme/shop:2.5.0'),
    )
    for (const [version, input] of [
      ['1.0.0', before],
      ['1.1.0', after],
    ] as const) {
      await publish({
        input,
        version,
        repository: `oci://${example}`,
        access: { plainHttp: true },
        revision: `v${version}@sha1:${'0'.repeat(40)}`,
      })
    }
    app = `${registry}/${g.repository}/app`
    const dir = g.scratch()
    await publishApp(dir, app, '2.0.0', { a: configMap('gone', { k: '1' }), s: secret('old-password') }, true)
    await publishApp(dir, app, '2.1.0', { b: configMap('new', { k: '1' }), s: secret('new-password') }, true)
  })

  it('shows exactly the image change of the example 1.0.0 → 1.1.0, in each environment, and nothing else', async () => {
    const out = await berth(['diff', `oci://${example}`, '1.0.0', '1.1.0'])
    for (const env of ['dev', 'staging', 'prod']) {
      expect(out).toContain(`${env}: 1 changed, 0 added, 0 removed\n  ~ Deployment shop-${env}/shop\n`)
    }
    expect(out).toContain('platform: no changes')
    const changes = out.split('\n').filter((l) => /^ {4}[-+](?![-+]{2} )/.test(l))
    expect(changes).toEqual(
      ['dev', 'staging', 'prod'].flatMap(() => [
        '    -          image: ghcr.io/acme/shop:2.4.1',
        '    +          image: ghcr.io/acme/shop:2.5.0',
      ]),
    )
    const prod = await berth(['diff', `oci://${example}`, '1.0.0', '1.1.0', '--env', 'prod'])
    expect(prod).not.toContain('dev:')
    expect(prod).toContain('prod: 1 changed')
  })

  it('names added and removed objects, and shows a Secret change without its values', async () => {
    const out = await berth(['diff', `oci://${app}`, '2.0.0', '2.1.0'])
    expect(out).toContain('app: 1 changed, 1 added, 1 removed')
    expect(out).toContain('  + ConfigMap new')
    expect(out).toContain('  - ConfigMap gone')
    expect(out).toContain('  ~ Secret db')
    expect(out).toContain('-  password: "(value in 2.0.0)"')
    expect(out).toContain('+  password: "(value in 2.1.0)"')
    // The unchanged key is not part of the change; no value, plain or base64, appears anywhere.
    expect(out).not.toMatch(/^ {4}[-+] {2}user/m)
    for (const value of ['old-password', 'new-password', 'shop']) {
      expect(out).not.toContain(value)
      expect(out).not.toContain(Buffer.from(value).toString('base64'))
    }
  })

  it('-o json is stable and complete', async () => {
    const args = ['diff', `oci://${app}`, '2.0.0', '2.1.0', '-o', 'json']
    const first = await berth(args)
    expect(await berth(args)).toBe(first)
    const doc = JSON.parse(first) as {
      repository: string
      from: { version: string; digest: string }
      to: { version: string; digest: string }
      environments: Array<{
        environment: string
        added: string[]
        removed: string[]
        changed: Array<{ object: string; diff: string }>
      }>
    }
    expect(doc.repository).toBe(`oci://${app}`)
    expect(doc.from).toEqual({ version: '2.0.0', digest: expect.stringMatching(/^sha256:[a-f0-9]{64}$/) })
    expect(doc.to.version).toBe('2.1.0')
    expect(doc.environments).toEqual([
      {
        environment: 'app',
        added: ['ConfigMap new'],
        removed: ['ConfigMap gone'],
        changed: [{ object: 'Secret db', diff: expect.stringContaining('+  password: "(value in 2.1.0)"') }],
      },
    ])
  })

  it('previous: the highest release below <to>, as the release job summary uses it; the first release says so', async () => {
    const out = await berth(['diff', `oci://${app}`, 'previous', '2.1.0'])
    expect(out).toContain(`oci://${app}: 2.0.0 (sha256:`)
    expect(out).toContain('app: 1 changed, 1 added, 1 removed')
    expect(await berth(['diff', `oci://${app}`, 'previous', '2.0.0'])).toBe(
      `oci://${app}: 2.0.0 is the first release; nothing to compare it with\n`,
    )
  })

  it('refuses an environment neither release has, naming those they have', async () => {
    const failed = await berth(['diff', `oci://${app}`, '2.0.0', '2.1.0', '--env', 'nope']).catch(
      (error: unknown) => error as { code: number; stderr: string },
    )
    expect(failed).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--env nope: neither release has it (they have: app)'),
    })
  })
})
