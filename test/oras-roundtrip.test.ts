import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { MEDIA_TYPES } from '../shared/artifact.ts'
import { writeLayout } from '../shared/oci-layout.ts'
import { copyFromLayout, fetchManifest, login, type OrasOptions, pull, push } from '../shared/oras.ts'
import type { RegistryInfo } from './ground/ground.ts'
import { useGround } from './support/ground.ts'
import { failureOf } from './support/failure.ts'

const g = useGround(import.meta.url)
const LAYER = 'application/vnd.cncf.flux.content.v1.tar+gzip'

/** Write random bytes to a fresh folder; return the folder, file name and its sha256. */
async function randomFile(name: string): Promise<{ dir: string; name: string; bytes: Buffer; digest: string }> {
  const dir = join(g.scratch(), randomBytes(4).toString('hex'))
  await mkdir(dir)
  const bytes = randomBytes(64 * 1024 + 17)
  await writeFile(join(dir, name), bytes)
  return { dir, name, bytes, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` }
}

async function loggedIn(registry: RegistryInfo): Promise<OrasOptions> {
  const access: OrasOptions = {
    ...g.orasAccess(registry),
    registryConfig: join(g.scratch(), `auth-${registry.host.replace(':', '-')}.json`),
  }
  if (registry.username && registry.password)
    await login(registry.host, { username: registry.username, password: registry.password }, access)
  return access
}

describe.each([
  ['plain HTTP registry', 'plain'],
  ['TLS registry with basic auth', 'secure'],
] as const)('oras push and pull on the %s', (_label, which) => {
  it('round-trips a file byte for byte, fetched by tag and by digest', async () => {
    const registry = g.ground.registries[which]
    const access = await loggedIn(registry)
    const file = await randomFile('bundle.tar.gz')
    const reference = `${registry.host}/${g.repository}:1.0.0`

    const pushed = await push(
      reference,
      { files: [{ path: file.name, mediaType: LAYER }], annotations: { 'org.opencontainers.image.version': '1.0.0' } },
      { ...access, cwd: file.dir },
    )
    expect(pushed.referenceAsTags).toEqual([reference])

    const manifest = await fetchManifest(reference, access)
    expect(manifest.digest).toBe(pushed.digest)
    expect(manifest.content).toMatchObject({
      annotations: { 'org.opencontainers.image.version': '1.0.0' },
      layers: [
        {
          mediaType: LAYER,
          digest: file.digest,
          size: file.bytes.length,
          annotations: { 'org.opencontainers.image.title': 'bundle.tar.gz' },
        },
      ],
    })

    const out = join(g.scratch(), `pulled-${which}`)
    const pulled = await pull(`${registry.host}/${g.repository}@${pushed.digest}`, out, access)
    expect(pulled.files.map((f) => f.digest)).toEqual([file.digest])
    expect((await readFile(join(out, 'bundle.tar.gz'))).equals(file.bytes)).toBe(true)
  })
})

describe('the OCI layout berth writes itself (berth push)', () => {
  it('holds byte for byte the manifest `oras push` makes of the same layer, and oras copies it up unchanged', async () => {
    const file = await randomFile('artifact.tgz')
    await writeFile(join(file.dir, 'config.json'), '{}')
    const annotations = {
      'org.opencontainers.image.version': '1.2.3',
      'org.opencontainers.image.created': '2023-11-14T22:13:20Z',
      'org.opencontainers.image.revision': `v1.2.3@sha1:${'a'.repeat(40)}`,
      'org.opencontainers.image.source': 'https://github.com/acme/shop-config',
    }
    const ours = await writeLayout(join(file.dir, 'ours'), '1.2.3', { layer: file.bytes, title: file.name, annotations })
    const theirs = await push(
      `${join(file.dir, 'theirs')}:1.2.3`,
      {
        files: [{ path: file.name, mediaType: MEDIA_TYPES.content }],
        config: { path: 'config.json', mediaType: MEDIA_TYPES.config },
        annotations,
      },
      { cwd: file.dir, ociLayout: true },
    )
    expect(ours).toStrictEqual({ mediaType: MEDIA_TYPES.manifest, digest: theirs.digest, size: theirs.size })

    const registry = g.ground.registries.plain
    const reference = `${registry.host}/${g.repository}:layout-1.2.3`
    await copyFromLayout(`${join(file.dir, 'ours')}:1.2.3`, reference, g.orasAccess(registry))
    const fetched = await fetchManifest(reference, g.orasAccess(registry))
    expect(fetched.digest).toBe(ours.digest)
    const out = join(g.scratch(), 'pulled-layout')
    await pull(reference, out, g.orasAccess(registry))
    expect((await readFile(join(out, file.name))).equals(file.bytes)).toBe(true)
  })
})

describe('oras failures are classified with a clear message', () => {
  it('a wrong password is unauthorized, and nothing is pushed', async () => {
    const registry = g.ground.registries.secure
    const access: OrasOptions = { ...g.orasAccess(registry), registryConfig: join(g.scratch(), 'wrong.json') }
    await expect(
      login(registry.host, { username: registry.username ?? '', password: 'not-the-password' }, access),
    ).rejects.toMatchObject({
      failure: 'unauthorized',
      reason: 'RegistryUnauthorized',
      message: expect.stringMatching(/cannot log in to 127\.0\.0\.1:\d+: unauthorized \(check the credentials/),
    })

    const file = await randomFile('x.tgz')
    const reference = `${registry.host}/${g.repository}:2.0.0`
    await expect(
      push(reference, { files: [{ path: file.name, mediaType: LAYER }] }, { ...access, cwd: file.dir }),
    ).rejects.toMatchObject({ failure: 'unauthorized' })
    // Proof that nothing landed: the authorized client finds no such tag.
    await expect(fetchManifest(reference, await loggedIn(registry))).rejects.toMatchObject({ failure: 'not-found' })
  })

  it('the password never appears in the process arguments or the error', async () => {
    const registry = g.ground.registries.secure
    const secret = `s3cret-${randomBytes(6).toString('hex')}`
    const failure = await failureOf(
      login(
        registry.host,
        { username: 'berth', password: secret },
        { ...g.orasAccess(registry), registryConfig: join(g.scratch(), 'x.json') },
      ),
    )
    expect(failure).toBeInstanceOf(Error)
    expect(JSON.stringify({ message: failure.message, cause: String(failure.cause) })).not.toContain(secret)
  })

  it('a missing tag is not-found; a closed port is unreachable; an untrusted certificate says so', async () => {
    const plain = g.ground.registries.plain
    await expect(fetchManifest(`${plain.host}/${g.repository}:9.9.9`, { plainHttp: true })).rejects.toMatchObject({
      failure: 'not-found',
      reason: 'ArtifactNotFound',
    })
    await expect(fetchManifest(`127.0.0.1:1/${g.repository}:1.0.0`, { plainHttp: true })).rejects.toMatchObject({
      failure: 'unreachable',
      message: expect.stringContaining('connection refused'),
    })
    await expect(fetchManifest(`${g.ground.registries.secure.host}/${g.repository}:1.0.0`, {})).rejects.toMatchObject({
      failure: 'unreachable',
      message: expect.stringContaining('certificate is not trusted'),
    })
  })
})
