/**
 * Provenance: cosign key-based signatures made and checked by berth against the real registry,
 * verified in the cluster before anything is applied, and interoperable both ways with the
 * real cosign CLI (built from its Go module as a ground part).
 */
import { writeFile } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { execa } from 'execa'
import { writeYaml } from '../shared/yaml-writer.ts'
import { beforeAll, describe, expect, it } from 'vitest'
import type { Environment } from '../api/environment.ts'
import { resolve } from '../reconciler/source/resolve.ts'
import { generateKeyPair, readPrivateKey, SIGNATURE_ANNOTATION } from '../shared/cosign.ts'
import { fetchManifest, pushBlob, pushManifest } from '../shared/oras.ts'
import { signArtifact, signatureTag } from '../shared/signatures.ts'
import { configMap } from './support/config-repo.ts'
import { applyEnvironment, installCrd, passes, publishApp } from './support/environments.ts'
import { failureOf } from './support/failure.ts'
import { ROOT, useGround } from './support/ground.ts'
import { pushRaw, tarGz } from './support/raw-artifacts.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'

type Failed = { exitCode: number; stdout: string; stderr: string }
const access = { plainHttp: true }

describe('provenance: cosign signatures, signed in CI and verified in the cluster', () => {
  let repository = ''
  const team = generateKeyPair('team-pw')
  const stranger = generateKeyPair('other-pw')
  const teamKey = readPrivateKey(team.privateKey, 'team-pw')
  const { envRef, run, ready } = passes(g)
  const digests: Record<string, string> = {}
  const cm = (name: string): Promise<{ data?: Record<string, string> } | undefined> =>
    g.kube().get({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: g.namespace } })
  const berth = (args: string[], env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string }> =>
    execa(process.execPath, [join(ROOT, 'bin/berth.js'), ...args], { env, cwd: g.scratch() })
  const keysSecret = (keys: Record<string, string>): Promise<unknown> =>
    g.kube().apply({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'trusted', namespace: g.namespace },
      data: Object.fromEntries(Object.entries(keys).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    })
  const publish = async (version: string, v: string): Promise<string> => {
    digests[version] = await publishApp(g.scratch(), repository, version, { a: configMap('app', { v }) })
    return digests[version]
  }
  /** Pin `version`, run one pass, and check it was refused for its signature, 1.0.0 still running. */
  const refused = async (version: string, message: RegExp): Promise<void> => {
    await g.kube().mergePatch(envRef('app'), { spec: { version } })
    const { env, outcome } = await run('app')
    expect(ready(env)).toMatchObject({ status: 'False', reason: 'VerificationFailed' })
    expect(ready(env)?.message).toMatch(message)
    expect(ready(env)?.message).toContain(`nothing of ${version} was applied; still running 1.0.0`)
    expect(outcome).toEqual({ next: 'stop' })
    expect((await cm('app'))?.data).toEqual({ v: '1' })
  }

  beforeAll(async () => {
    await installCrd(g.kube())
    repository = `${g.ground.registries.plain.host}/${g.repository}/app`
    await signArtifact(repository, await publish('1.0.0', '1'), await teamKey, access)
    await publish('2.0.0', '2')
    await signArtifact(repository, await publish('3.0.0', '3'), await readPrivateKey(stranger.privateKey, 'other-pw'), access)
    await signArtifact(repository, await publish('4.0.0', '4'), await teamKey, access)
    await publish('5.0.0', '5')
    await keysSecret({ 'team.pub': team.publicKey, 'notes.txt': 'not a key' })
    await applyEnvironment(g, 'app', repository, {
      version: '1.0.0',
      verify: { provider: 'cosign', secretRef: { name: 'trusted' } },
    })
  })

  it('applies a version signed by a trusted key, and says which key in status and berth status', async () => {
    const { env } = await run('app')
    expect(ready(env)).toMatchObject({ status: 'True' })
    expect(env.status?.verified).toMatchObject({
      digest: digests['1.0.0'],
      key: 'team.pub',
      keyId: expect.stringMatching(/^sha256:/),
    })
    const table = await berth(['status', 'app', '-n', g.namespace, '--kubeconfig', g.ground.kubeconfig])
    expect(table.stdout).toMatch(/\s+True\s+no\s+-\s+team\.pub\s+/)
    // Not verified again while the digest and the keys stay the same.
    const before = env.status?.conditions
    const again = await run('app')
    expect(again.env.status?.verified).toEqual(env.status?.verified)
    const events = await g.kube().list<{ reason: string }>('v1', 'Event', { namespace: g.namespace })
    expect(events.filter((e) => e.reason === 'Verified')).toHaveLength(1)
    expect(before).toBeDefined()
  })

  it('refuses an unsigned version', async () => {
    await refused('2.0.0', /^unsigned: no cosign signature for sha256:[a-f0-9]{64} \(.*:sha256-[a-f0-9]{64}\.sig\)/)
  })

  it('refuses a version signed by an untrusted key', async () => {
    await refused('3.0.0', /no signature of sha256:[a-f0-9]{64} verifies with a trusted key \(team\.pub\): 1 signature/)
  })

  it('refuses a tampered signature annotation', async () => {
    const where = signatureTag(repository, digests['4.0.0'] ?? '')
    const manifest = (await fetchManifest(where, access)).content as {
      layers: Array<{ annotations: Record<string, string> }>
    }
    const layer = manifest.layers[0]
    if (!layer) throw new Error('no signature layer')
    const signature = Buffer.from(layer.annotations[SIGNATURE_ANNOTATION] ?? '', 'base64')
    signature[signature.length - 1] = (signature[signature.length - 1] ?? 0) ^ 0x01
    layer.annotations[SIGNATURE_ANNOTATION] = signature.toString('base64')
    const file = join(g.scratch(), 'tampered.json')
    await writeFile(file, JSON.stringify(manifest))
    await pushManifest(where, file, 'application/vnd.oci.image.manifest.v1+json', access)
    await refused('4.0.0', /no signature of .* verifies with a trusted key/)
  })

  it('refuses a signature layer larger than a signature can be, without reading it', async () => {
    // A signature manifest whose one layer is a 1 MiB blob (pushed for real): berth reads no such thing.
    const digest = await publish('8.0.0', '8')
    const big = Buffer.alloc(1024 * 1024, 65)
    const blobFile = join(g.scratch(), 'big-blob')
    await writeFile(blobFile, big)
    const blobDigest = `sha256:${createHash('sha256').update(big).digest('hex')}`
    await pushBlob(repository, blobDigest, blobFile, access)
    const config = Buffer.from('{}')
    const configFile = join(g.scratch(), 'config.json')
    await writeFile(configFile, config)
    const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`
    await pushBlob(repository, configDigest, configFile, access)
    const manifest = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [
        {
          mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
          digest: blobDigest,
          size: big.length,
          annotations: { [SIGNATURE_ANNOTATION]: 'AAAA' },
        },
      ],
    }
    const file = join(g.scratch(), 'big-signature.json')
    await writeFile(file, JSON.stringify(manifest))
    await pushManifest(signatureTag(repository, digest), file, 'application/vnd.oci.image.manifest.v1+json', access)
    await g.kube().mergePatch(envRef('app'), { spec: { version: '8.0.0' } })
    const { env } = await run('app')
    expect(ready(env)).toMatchObject({ status: 'False', reason: 'TooLarge' })
    expect(ready(env)?.message).toContain(`is ${big.length} bytes; a cosign signature payload is under 64 KiB`)
    expect((await cm('app'))?.data).toEqual({ v: '1' })
  })

  it('refuses a signature manifest that belongs to another digest', async () => {
    // 1.0.0's valid signature, put where 5.0.0's would be: it verifies, but names another digest.
    const theirs = await fetchManifest(signatureTag(repository, digests['1.0.0'] ?? ''), access)
    const file = join(g.scratch(), 'other.json')
    await writeFile(file, JSON.stringify(theirs.content))
    await pushManifest(
      signatureTag(repository, digests['5.0.0'] ?? ''),
      file,
      'application/vnd.oci.image.manifest.v1+json',
      access,
    )
    await refused(
      '5.0.0',
      new RegExp(`signed for another digest: .* names ${digests['1.0.0'] ?? ''}, not ${digests['5.0.0'] ?? ''}`),
    )
  })

  it('refuses a moved tag even though the old digest keeps its valid signature', async () => {
    await signArtifact(repository, await publish('6.0.0', '6'), await teamKey, access)
    await pushRaw(g, `${repository}:6.0.0`, await tarGz({ './app/a.yaml': writeYaml(configMap('app', { v: 'evil' })) }))
    const moved = await resolve(repository, '6.0.0', undefined, access)
    expect(moved.digest).not.toBe(digests['6.0.0'])
    await refused('6.0.0', new RegExp(`^unsigned: no cosign signature for ${moved.digest}`))
  })

  it('berth promote refuses up front what the reconciler would refuse (exit 3), and changes nothing', async () => {
    const failed = await failureOf<Failed>(
      berth(['promote', 'app', '--to', '2.0.0', '-n', g.namespace, '--kubeconfig', g.ground.kubeconfig]),
    )
    expect(failed.exitCode).toBe(3)
    expect(failed.stderr).toContain('unsigned: no cosign signature')
    expect(failed.stderr).toContain('nothing changed')
    expect(((await g.kube().get<Environment>(envRef('app')))?.spec as { version: string }).version).toBe('6.0.0')
  })

  it('key rotation: any one trusted key suffices; a changed keys Secret is checked again', async () => {
    const next = generateKeyPair('next-pw')
    await signArtifact(repository, await publish('7.0.0', '7'), await readPrivateKey(next.privateKey, 'next-pw'), access)
    await keysSecret({ 'team.pub': team.publicKey, 'next.pub': next.publicKey })
    await g.kube().mergePatch(envRef('app'), { spec: { version: '7.0.0' } })
    const { env } = await run('app')
    expect(ready(env)).toMatchObject({ status: 'True' })
    expect(env.status?.verified).toMatchObject({ digest: digests['7.0.0'], key: 'next.pub' })
    // The old key is retired: the same digest is checked again, and still verifies with next.pub.
    const fingerprint = env.status?.verified?.keys
    await keysSecret({ 'next.pub': next.publicKey })
    const after = await run('app')
    expect(after.env.status?.verified?.keys).not.toBe(fingerprint)
    expect(ready(after.env)).toMatchObject({ status: 'True' })
  })

  it('a keys Secret that is missing, or holds no valid key, stalls and names it', async () => {
    await keysSecret({ 'bad.pub': 'not a key' })
    const none = await run('app')
    expect(ready(none.env)).toMatchObject({ reason: 'VerificationFailed' })
    expect(ready(none.env)?.message).toContain(
      `spec.verify.secretRef: Secret ${g.namespace}/trusted holds no valid *.pub key`,
    )
    expect(none.env.status?.conditions?.find((c) => c.type === 'Stalled')?.status).toBe('True')
    await g.kube().delete({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'trusted', namespace: g.namespace } })
    const missing = await run('app')
    expect(ready(missing.env)?.message).toContain(`spec.verify.secretRef: Secret ${g.namespace}/trusted does not exist`)
    expect(missing.outcome).toEqual({ next: 'stop' })
  })
})

describe('berth and the real cosign CLI, both ways', () => {
  const cosign = (args: string[], password: string): Promise<{ stdout: string; stderr: string }> =>
    execa(g.ground.parts.cosign, args, {
      cwd: g.scratch(),
      // Offline: no transparency log, and a trusted root of its own so cosign never looks for Sigstore's.
      env: { COSIGN_PASSWORD: password, HOME: g.scratch(), TUF_ROOT: join(g.scratch(), 'tuf') },
    })
  const berth = (args: string[], password: string, cwd: string): Promise<{ stdout: string; stderr: string }> =>
    execa(process.execPath, [join(ROOT, 'bin/berth.js'), ...args], { env: { BERTH_COSIGN_PASSWORD: password }, cwd })
  const offline = ['--trusted-root', 'trusted-root.json', '--allow-http-registry']
  let repository = ''
  let digest = ''

  beforeAll(async () => {
    await writeFile(
      join(g.scratch(), 'trusted-root.json'),
      '{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}',
    )
    repository = `${g.ground.registries.plain.host}/${g.repository}/interop`
    digest = await publishApp(g.scratch(), repository, '1.0.0', { a: configMap('interop', { v: '1' }) })
  })

  it('cosign verifies what berth signed with a berth key, and signs with that berth key too', async () => {
    const dir = join(g.scratch(), 'berth-keys')
    await execa('mkdir', ['-p', dir])
    expect((await berth(['keygen'], 'berth-pw', dir)).stdout).toContain('cosign.key')
    await berth(['sign', `${repository}:1.0.0`, '--key', 'cosign.key', '--plain-http'], 'berth-pw', dir)
    const verified = await cosign(
      [
        'verify',
        '--key',
        join(dir, 'cosign.pub'),
        '--insecure-ignore-tlog',
        '--offline',
        ...offline,
        `${repository}@${digest}`,
      ],
      '',
    )
    expect(verified.stdout).toContain(`"docker-manifest-digest":"${digest}"`)
    expect(verified.stderr).toContain('The signatures were verified against the specified public key')
    // cosign decrypts berth's cosign.key (same scrypt + secretbox format) and signs with it.
    await cosign(
      ['sign', '--key', join(dir, 'cosign.key'), '--tlog-upload=false', '--yes', ...offline, `${repository}@${digest}`],
      'berth-pw',
    )
    expect(
      (await berth(['verify', `${repository}:1.0.0`, '--key', 'cosign.pub', '--plain-http'], '', dir)).stdout,
    ).toContain('verified')
  })

  it('berth verifies what cosign signed, and signs with a cosign-generated key (berth push --sign); re-signing adds', async () => {
    const dir = join(g.scratch(), 'cosign-keys')
    await execa('mkdir', ['-p', dir])
    await execa(g.ground.parts.cosign, ['generate-key-pair'], {
      cwd: dir,
      env: { COSIGN_PASSWORD: 'cosign-pw', HOME: g.scratch() },
    })
    await cosign(
      ['sign', '--key', join(dir, 'cosign.key'), '--tlog-upload=false', '--yes', ...offline, `${repository}@${digest}`],
      'cosign-pw',
    )
    const out = await berth(['verify', `${repository}:1.0.0`, '--key', 'cosign.pub', '--plain-http'], '', dir)
    expect(out.stdout).toMatch(/^verified .*@sha256:[a-f0-9]{64} with cosign\.pub \(sha256:[a-f0-9]{16}\)/)
    const layers = async (): Promise<number> =>
      ((await fetchManifest(signatureTag(repository, digest), access)).content as { layers: unknown[] }).layers.length

    const count = await layers()
    const pushed = await berth(
      [
        'push',
        join(ROOT, 'examples/shop-config'),
        '--version',
        '3.0.0',
        '--repository',
        `oci://${repository}`,
        '--plain-http',
        '--sign',
        '--key',
        'cosign.key',
        '-o',
        'json',
      ],
      'cosign-pw',
      dir,
    )
    const result = JSON.parse(pushed.stdout) as { digest: string; signature: string }
    expect(result.signature).toBe(signatureTag(repository, result.digest))
    await cosign(
      [
        'verify',
        '--key',
        join(dir, 'cosign.pub'),
        '--insecure-ignore-tlog',
        '--offline',
        ...offline,
        `${repository}@${result.digest}`,
      ],
      '',
    )
    expect(await layers()).toBe(count)
    // berth signing the 1.0.0 that cosign and berth signed already adds its signature beside theirs.
    const other = generateKeyPair('x')
    await writeFile(join(dir, 'third.key'), other.privateKey)
    await berth(['sign', `${repository}@${digest}`, '--key', 'third.key', '--plain-http'], 'x', dir)
    expect(await layers()).toBe(count + 1)
  })

  it('berth push --sign with a key it cannot open publishes nothing, though the key is opened while it renders', async () => {
    const dir = join(g.scratch(), 'cosign-keys')
    const args = ['push', join(ROOT, 'examples/shop-config'), '--version', '5.0.0', '--repository', `oci://${repository}`]
    const failed = await failureOf<Failed>(
      berth([...args, '--plain-http', '--sign', '--key', 'cosign.key'], 'not-the-password', dir),
    )
    expect(failed.stderr).toContain('wrong password (BERTH_COSIGN_PASSWORD)')
    expect(failed.stderr).not.toContain('not-the-password')
    const { stdout } = await execa(g.ground.parts.oras, ['repo', 'tags', repository, '--plain-http'])
    expect(stdout.split('\n')).not.toContain('5.0.0')
  })

  it('berth push --sign with a key it cannot read says so plainly (exit 2, no stack trace) and publishes nothing', async () => {
    const dir = g.scratch()
    const args = ['push', join(ROOT, 'examples/shop-config'), '--version', '5.0.1', '--repository', `oci://${repository}`]
    for (const key of ['missing.key', 'env://BERTH_TEST_NO_SUCH_KEY']) {
      const failed = await failureOf<Failed>(berth([...args, '--plain-http', '--sign', '--key', key], 'pw', dir))
      expect(failed.exitCode).toBe(2)
      expect(failed.stderr).toContain(`--key ${key}: `)
      expect(failed.stderr).not.toMatch(/\bat .*signing\.ts/)
    }
    const { stdout } = await execa(g.ground.parts.oras, ['repo', 'tags', repository, '--plain-http'])
    expect(stdout.split('\n')).not.toContain('5.0.1')
  })

  it('berth verify exits 3 on an unsigned version, saying so', async () => {
    const unsigned = await publishApp(g.scratch(), repository, '4.0.0', { a: configMap('interop', { v: '4' }) })
    const dir = join(g.scratch(), 'cosign-keys')
    const failed = await failureOf<Failed>(
      berth(['verify', `${repository}:4.0.0`, '--key', 'cosign.pub', '--plain-http'], '', dir),
    )
    expect(failed.exitCode).toBe(3)
    expect(failed.stderr).toContain(`unsigned: no cosign signature for ${unsigned}`)
  })
})
