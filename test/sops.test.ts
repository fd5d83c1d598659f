/**
 * SOPS with age, against the real tools: Debian's age-keygen makes the keys, the real sops (built by the ground)
 * encrypts, berth publishes to the real registry and a real reconciler process applies to the real apiserver. What
 * berth decrypts must be exactly what `sops --decrypt` prints; anything wrong refuses the whole version; and the
 * plaintext is nowhere but in the cluster's Secret.
 */
import { execFile } from 'node:child_process'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { load } from 'js-yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Environment } from '../api/environment.ts'
import { decryptSopsFile } from '../shared/sops.ts'
import { fetchArtifact } from '../reconciler/source/fetch.ts'
import { resolve as resolvePin } from '../reconciler/source/resolve.ts'
import { berthYaml, writeTree } from './support/config-repo.ts'
import { applyEnvironment, eventsOf, installCrd } from './support/environments.ts'
import { eventually } from './support/eventually.ts'
import { failureOf, type ProcessFailure } from './support/failure.ts'
import { ROOT, useGround } from './support/ground.ts'
import { type ReconcilerProcess, startReconciler } from './support/reconciler-process.ts'
import { type Receiver, startReceiver } from './support/receiver.ts'

const g = useGround(import.meta.url)
const run = promisify(execFile)
process.env.SOURCE_DATE_EPOCH = '1700000000'

const PASSWORD = 'hunter2-correct-horse'
const TOKEN = 'tok-9f8e7d6c5b4a'
type Key = { identity: string; recipient: string }
type Secret = { data?: Record<string, string>; metadata: { annotations?: Record<string, string> } }

describe('encrypted secrets (SOPS with age)', () => {
  const keys: Key[] = []
  let repository = ''
  let reconciler: ReconcilerProcess | undefined
  let receiver: Receiver | undefined
  const scratch = (name: string): string => join(g.scratch(), name)
  const sops = async (args: string[], env: Record<string, string> = {}): Promise<string> =>
    (await run(g.ground.parts.sops, args, { env: { ...process.env, ...env } })).stdout
  const berth = async (args: string[]): Promise<string> =>
    (await run(process.execPath, [join(ROOT, 'bin/berth.js'), ...args], { env: process.env })).stdout
  /** A Secret as a developer writes it, then encrypted by the real sops to `recipients`. */
  const encrypted = async (file: string, values: { password: string; token: string }, recipients: Key[], regex = '^(data|stringData)$'): Promise<string> => {
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db' },
      type: 'Opaque',
      data: { password: Buffer.from(values.password).toString('base64') },
      stringData: { token: values.token, port: '5432' },
    }
    await writeFile(file, JSON.stringify(secret))
    const out = await sops([
      '--encrypt', '--input-type', 'json', '--output-type', 'yaml',
      '--age', recipients.map((k) => k.recipient).join(','), '--encrypted-regex', regex, file,
    ])
    await writeFile(file, out)
    return out
  }
  const decrypted = async (file: string, key: Key): Promise<unknown> =>
    load(await sops(['--decrypt', file], { SOPS_AGE_KEY: key.identity }))

  beforeAll(async () => {
    await installCrd(g.kube())
    for (const name of ['one', 'two', 'other']) {
      const file = scratch(`${name}.agekey`)
      await run(g.ground.parts.ageKeygen, ['-o', file])
      const text = await readFile(file, 'utf8')
      keys.push({
        identity: text.split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-')) ?? '',
        recipient: /public key: (age1\S+)/.exec(text)?.[1] ?? '',
      })
    }
    repository = `${g.ground.registries.plain.host}/${g.repository}/app`
  })
  afterAll(async () => {
    reconciler?.kill()
    await receiver?.close()
  })

  it('decrypts files the real sops encrypted to exactly what sops --decrypt prints: data and stringData, several recipients, whole files', async () => {
    const [one, two] = keys as [Key, Key]
    const partial = scratch('partial.yaml')
    const text = await encrypted(partial, { password: PASSWORD, token: TOKEN }, [one, two])
    for (const key of [one, two]) {
      expect((await decryptSopsFile(text, [key.identity]))[0]).toEqual(await decrypted(partial, key))
    }
    const whole = scratch('whole.yaml')
    const all = await encrypted(whole, { password: PASSWORD, token: TOKEN }, [one], '.*')
    expect(all).not.toContain('kind: Secret')
    expect((await decryptSopsFile(all, [one.identity]))[0]).toEqual(await decrypted(whole, one))
    // Wrong key, a changed ciphertext, a changed clear value: refused, naming no value.
    await expect(decryptSopsFile(text, [(keys[2] as Key).identity])).rejects.toThrow(/none of the age identities given opens it/)
    const flipped = text.replace(/(password: ENC\[AES256_GCM,data:)(.)/, (_, head: string, c: string) => head + (c === 'A' ? 'B' : 'A'))
    await expect(decryptSopsFile(flipped, [one.identity])).rejects.toThrow('data:password does not decrypt')
    await expect(decryptSopsFile(text.replace('type: Opaque', 'type: Other'), [one.identity])).rejects.toThrow('its MAC does not match')
  })

  describe('through the registry into the cluster', () => {
    const target = (): string => `${g.namespace}-app`
    const live = (): Promise<Secret | undefined> =>
      g.kube().get<Secret>({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db', namespace: target() } })
    const env = (): Promise<Environment | undefined> => g.kube().get<Environment>({ apiVersion: 'berth.dev/v1alpha1', kind: 'Environment', metadata: { name: 'app', namespace: g.namespace } })
    const ready = (e: Environment | undefined): { reason?: string; message?: string; status?: string } | undefined =>
      e?.status?.conditions?.find((c) => c.type === 'Ready')
    /** Publish `version` of a repository whose `app` environment is a kustomize overlay over the encrypted Secret. */
    type Values = { password: string; token: string }
    const publishVersion = async (version: string, values: Values, tamper?: (t: string) => string): Promise<string> => {
      const dir = await writeTree(scratch(`repo-${version}`), {
        'berth.yaml': berthYaml(`oci://${repository}`, { app: { kustomize: 'overlay' } }),
        'overlay/kustomization.yaml': { namespace: target(), resources: ['../base'], commonLabels: { team: 'shop' } },
        'base/kustomization.yaml': { resources: ['secret.sops.yaml', 'config.yaml'] },
        'base/config.yaml': { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'config' }, data: { version } },
      })
      const file = join(dir, 'base/secret.sops.yaml')
      const text = await encrypted(file, values, [keys[0] as Key, keys[1] as Key])
      if (tamper) await writeFile(file, tamper(text))
      return await berth(['push', dir, '--version', version, '--plain-http'])
    }

    beforeAll(async () => {
      await g.kube().apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: target() } })
      await g.kube().apply({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'sops-age', namespace: g.namespace },
        stringData: { 'team.agekey': `# created: by the test\n${(keys[1] as Key).identity}\n` },
      })
      receiver = await startReceiver()
      await g.kube().apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'hook', namespace: g.namespace }, stringData: { address: receiver.url } })
    })

    it('the packager keeps the Secret encrypted, byte for byte, without --allow-secrets; the cluster gets exactly the plaintext', async () => {
      expect(await publishVersion('1.0.0', { password: PASSWORD, token: TOKEN })).toContain('published')
      // In the artifact: the rendered Secret still encrypted, and the file sops wrote, unchanged.
      const resolved = await resolvePin(repository, '1.0.0', undefined, { plainHttp: true })
      const files = await fetchArtifact(repository, resolved, { plainHttp: true }, scratch('inspect'))
      const rendered = [...files].find(([path]) => path.startsWith('app/') && path.includes('secret'))
      expect(rendered?.[1].toString()).toMatch(/password: "?ENC\[AES256_GCM,data:/)
      const source = [...files].find(([path]) => path.startsWith('.sops/'))
      expect(source?.[1].toString()).toBe(await readFile(join(scratch('repo-1.0.0'), 'base/secret.sops.yaml'), 'utf8'))
      for (const [, body] of files) {
        expect(body.toString()).not.toContain(PASSWORD)
        expect(body.toString()).not.toContain(TOKEN)
      }

      reconciler = startReconciler(g.ground.kubeconfig, scratch('cache'), ['--namespace', g.namespace])
      await applyEnvironment(g, 'app', repository, {
        version: '1.0.0',
        path: 'app',
        decryption: { provider: 'sops', secretRef: { name: 'sops-age' } },
        notify: [{ type: 'webhook', secretRef: { name: 'hook' } }],
      })
      await eventually(env, (e) => ready(e)?.status === 'True', 60_000, 250)
      const secret = await live()
      const plain = await decrypted(join(scratch('repo-1.0.0'), 'base/secret.sops.yaml'), keys[0] as Key) as { data: Record<string, string>; stringData: Record<string, string> }
      // stringData is written into data by the apiserver: both as sops --decrypt says.
      expect(secret?.data).toEqual({
        password: plain.data.password,
        token: Buffer.from(plain.stringData.token ?? '').toString('base64'),
        port: Buffer.from(plain.stringData.port ?? '').toString('base64'),
      })
      expect(Buffer.from(secret?.data?.password ?? '', 'base64').toString()).toBe(PASSWORD)
      expect(secret?.metadata.annotations?.['berth.dev/sops-source']).toBeUndefined()
    })

    it('berth diff says an encrypted value changed, never what it was or is', async () => {
      await publishVersion('1.1.0', { password: 'new-password-7', token: TOKEN })
      const out = await berth(['diff', `oci://${repository}`, '1.0.0', '1.1.0', '--plain-http'])
      expect(out).toContain('-  password: "(encrypted)"\n')
      expect(out).toContain('+  password: "(encrypted value changed)"\n')
      expect(out).not.toContain('.sops')
      expect(out).not.toMatch(/ENC\[|new-password-7|hunter2/)
    })

    it('a tampered ciphertext, a tampered clear value, a wrong key: DecryptionFailed, nothing applied, the old version keeps running', async () => {
      const before = (await live())?.data?.password
      const flip = (text: string): string =>
        text.replace(/(token: ENC\[AES256_GCM,data:)(.)/, (_, head: string, c: string) => head + (c === 'A' ? 'B' : 'A'))
      await publishVersion('2.0.0', { password: 'never-applied-1', token: TOKEN }, flip)
      await publishVersion('2.0.1', { password: 'never-applied-2', token: TOKEN }, (t) => t.replace('type: Opaque', 'type: Other'))
      for (const [version, why] of [['2.0.0', 'stringData:token does not decrypt'], ['2.0.1', 'its MAC does not match']] as const) {
        await g.kube().mergePatch({ apiVersion: 'berth.dev/v1alpha1', kind: 'Environment', metadata: { name: 'app', namespace: g.namespace } }, { spec: { version } })
        const failed = await eventually(env, (e) => ready(e)?.reason === 'DecryptionFailed' && e?.status?.lastAttemptedVersion === version, 60_000, 250)
        expect(ready(failed)?.message).toContain(`Secret ${target()}/db (app/`)
        expect(ready(failed)?.message).toContain(why)
        expect(ready(failed)?.message).toContain('still running 1.0.0')
        expect(failed?.status?.lastAppliedVersion).toBe('1.0.0')
        expect((await live())?.data?.password).toBe(before)
      }
      // The right version with a key Secret that holds another key.
      await g.kube().apply({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'sops-age', namespace: g.namespace },
        stringData: { 'team.agekey': (keys[2] as Key).identity },
      })
      await g.kube().mergePatch({ apiVersion: 'berth.dev/v1alpha1', kind: 'Environment', metadata: { name: 'app', namespace: g.namespace } }, { spec: { version: '1.1.0' } })
      const wrong = await eventually(env, (e) => ready(e)?.reason === 'DecryptionFailed' && e?.status?.lastAttemptedVersion === '1.1.0', 60_000, 250)
      expect(ready(wrong)?.message).toContain('none of the age identities given opens it')
      expect((await live())?.data?.password).toBe(before)
    })

    it('a partly encrypted Secret is refused by the packager, naming file, document and key', async () => {
      const dir = await writeTree(scratch('partial-repo'), {
        'berth.yaml': berthYaml(`oci://${repository}`, { app: { manifests: 'app' } }),
      })
      await run('mkdir', ['-p', join(dir, 'app')])
      await encrypted(join(dir, 'app', 'secret.yaml'), { password: PASSWORD, token: TOKEN }, [keys[0] as Key], '^data$')
      const refused = await failureOf<ProcessFailure>(berth(['push', dir, '--version', '3.0.0', '--plain-http']))
      expect(refused.stderr).toContain('app/secret.yaml#1: Secret db is not wholly SOPS-encrypted')
      expect(refused.stderr).toContain('stringData.token is in clear beside encrypted values')
      expect(refused.stderr).not.toContain(PASSWORD)
    })

    it('the plaintext is in no log line, Event, status, notification or cache file', async () => {
      const needles = [PASSWORD, TOKEN, Buffer.from(PASSWORD).toString('base64'), Buffer.from(TOKEN).toString('base64')]
      const events = JSON.stringify(await eventsOf(g, 'app'))
      const status = JSON.stringify(await env())
      const told = JSON.stringify(receiver?.received ?? [])
      expect(told).toContain('"event"')
      const cached: string[] = []
      for (const entry of await readdir(scratch('cache'), { recursive: true, withFileTypes: true })) {
        if (entry.isFile()) cached.push((await readFile(join(entry.parentPath, entry.name))).toString('latin1'))
      }
      expect(cached.length).toBeGreaterThan(0)
      for (const needle of needles) {
        const places: Array<[string, string]> = [
          ['logs', reconciler?.logs() ?? ''],
          ['events', events],
          ['status', status],
          ['notifications', told],
          ['cache', cached.join('\n')],
        ]
        for (const [where, text] of places) expect(text.includes(needle), `${needle} in ${where}`).toBe(false)
      }
    })
  })
})
