import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { x as extract } from 'tar'
import { describe, expect, it } from 'vitest'
import { packageRepository } from '../packager/package.ts'
import { publish, type PublishRequest } from '../packager/publish.ts'
import { ANNOTATIONS, MEDIA_TYPES, METADATA_FILE } from '../shared/artifact.ts'
import { fetchManifest, pull } from '../shared/oras.ts'
import { berthYaml, configMap, threeKindRepo, writeTree } from './support/config-repo.ts'
import { ROOT, useGround } from './support/ground.ts'
import { failureOf, type ProcessFailure } from './support/failure.ts'

const g = useGround(import.meta.url)
const plain = (): string => g.ground.registries.plain.host
let n = 0
const fresh = async (): Promise<string> => {
  const dir = join(g.scratch(), `case-${++n}`)
  await mkdir(dir)
  return dir
}
// A fixed creation time, as CI gets from the commit: the same release gives the same digest.
process.env.SOURCE_DATE_EPOCH = '1700000000'
const REVISION = `v1.0.0@sha1:${'a1'.repeat(20)}`
const SOURCE = 'https://github.com/acme/shop-config'

async function pushPlain(request: Omit<PublishRequest, 'access'>): Promise<Awaited<ReturnType<typeof publish>>> {
  return await publish({ source: SOURCE, revision: REVISION, ...request, access: { plainHttp: true } })
}

async function tags(repository: string): Promise<string[]> {
  const res = await fetch(`http://${repository.replace(/^([^/]+)\//, '$1/v2/')}/tags/list`)
  if (res.status === 404) return []
  return ((await res.json()) as { tags: string[] | null }).tags ?? []
}

describe('berth push to a real registry', () => {
  it('round-trips: what is pulled and extracted is exactly what was packaged', async () => {
    const repo = await threeKindRepo(await fresh(), `oci://${plain()}/${g.repository}/roundtrip`)
    const result = await pushPlain({ input: repo, version: '1.0.0' })
    expect(result).toMatchObject({ reference: `${plain()}/${g.repository}/roundtrip:1.0.0`, alreadyPublished: false })

    const local = await packageRepository({
      dir: repo,
      version: '1.0.0',
      out: join(await fresh(), 'local.tgz'),
      revision: REVISION,
      source: SOURCE,
    })
    const pulledDir = await fresh()
    const pulled = await pull(`${result.repository}@${result.digest}`, pulledDir, { plainHttp: true })
    expect(pulled.files).toHaveLength(1)
    const bytes = await readFile(join(pulledDir, 'artifact.tgz'))
    expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).toBe(local.digest)

    const out = await fresh()
    await extract({ file: join(pulledDir, 'artifact.tgz'), cwd: out })
    expect((await readdir(out)).sort()).toEqual([METADATA_FILE, 'dev', 'prod', 'staging'])
    expect(await readFile(join(out, 'staging', 'staging_configmap_settings.yaml'), 'utf8')).toContain('env: staging')
  })

  it('writes exactly the media types and annotations of the artifact format', async () => {
    const repo = await threeKindRepo(await fresh(), `oci://${plain()}/${g.repository}/format`)
    const result = await pushPlain({ input: repo, version: 'v2.1.0-rc.1' })
    const manifest = await fetchManifest(`${plain()}/${g.repository}/format:2.1.0-rc.1`, { plainHttp: true })
    expect(manifest.digest).toBe(result.digest)
    expect(manifest.mediaType).toBe(MEDIA_TYPES.manifest)
    expect(manifest.content).toEqual({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.manifest,
      config: { mediaType: MEDIA_TYPES.config, digest: expect.stringMatching(/^sha256:/), size: 2 },
      layers: [
        {
          mediaType: MEDIA_TYPES.content,
          digest: expect.stringMatching(/^sha256:/),
          size: expect.any(Number),
          annotations: { 'org.opencontainers.image.title': 'artifact.tgz' },
        },
      ],
      annotations: {
        [ANNOTATIONS.version]: '2.1.0-rc.1',
        [ANNOTATIONS.created]: '2023-11-14T22:13:20Z',
        [ANNOTATIONS.source]: SOURCE,
        [ANNOTATIONS.revision]: REVISION,
      },
    })
  })

  it('is immutable: the same release again is "already published"; other bytes under the tag are refused, naming both digests', async () => {
    const repository = `oci://${plain()}/${g.repository}/immutable`
    const repo = await threeKindRepo(await fresh(), repository)
    const first = await pushPlain({ input: repo, version: '1.0.0' })
    const again = await pushPlain({ input: repo, version: '1.0.0' })
    expect(again).toMatchObject({ alreadyPublished: true, digest: first.digest })

    await writeFile(join(repo, 'plain', 'extra.yaml'), JSON.stringify(configMap('extra', { a: '1' }, 'dev')))
    const refused = await failureOf<Error & { reason: string }>(pushPlain({ input: repo, version: '1.0.0' }))
    expect(refused.reason).toBe('TagExists')
    expect(refused.message).toContain(`already exists with digest ${first.digest}`)
    expect(refused.message).toMatch(/this release would be sha256:[a-f0-9]{64}/)
    expect((await fetchManifest(`${plain()}/${g.repository}/immutable:1.0.0`, { plainHttp: true })).digest).toBe(
      first.digest,
    )
  })

  it('pushes a tar.gz made by berth package, and refuses one packaged as another version', async () => {
    const repo = await threeKindRepo(await fresh(), 'oci://unused.example.com/x')
    const file = join(await fresh(), 'release.tgz')
    await packageRepository({ dir: repo, version: '3.0.0', out: file })
    const repository = `oci://${plain()}/${g.repository}/from-file`
    await expect(pushPlain({ input: file, version: '3.0.1', repository })).rejects.toMatchObject({
      reason: 'VersionMismatch',
      message: expect.stringContaining('packaged as version 3.0.0, not 3.0.1'),
    })
    const pushed = await pushPlain({ input: file, version: '3.0.0', repository })
    expect(pushed.alreadyPublished).toBe(false)
    expect(await tags(`${plain()}/${g.repository}/from-file`)).toEqual(['3.0.0'])
  })

  describe('bad input is refused before anything is sent', () => {
    it.each([
      ['an invalid version', { version: '1.0' }, /is not a semantic version/],
      ['build metadata', { version: '1.0.0+abc' }, /build metadata/],
      [
        'a repository that is not oci://',
        { version: '1.0.0', repository: 'https://example.com/x' },
        /must be oci:\/\/<registry>\/<path>/,
      ],
      ['a malformed revision', { version: '1.0.0', revision: 'main' }, /must be <tag or branch>@sha1:<40-hex commit>/],
    ])('%s', async (_label, overrides, message) => {
      const repository = `oci://${plain()}/${g.repository}/refused`
      const repo = await threeKindRepo(await fresh(), repository)
      await expect(pushPlain({ input: repo, ...overrides })).rejects.toThrow(message)
      expect(await tags(`${plain()}/${g.repository}/refused`)).toEqual([])
    })

    it('an invalid manifest', async () => {
      const repository = `oci://${plain()}/${g.repository}/invalid`
      const repo = await writeTree(await fresh(), {
        'berth.yaml': berthYaml(repository, { dev: { manifests: 'm' } }),
        'm/a.yaml': 'apiVersion: v1\nkind: ConfigMap\n',
      })
      await expect(pushPlain({ input: repo, version: '1.0.0' })).rejects.toMatchObject({ reason: 'InvalidManifest' })
      expect(await tags(`${plain()}/${g.repository}/invalid`)).toEqual([])
    })
  })

  describe('on the registry with TLS and basic auth', () => {
    const secure = (): typeof g.ground.registries.secure => g.ground.registries.secure

    it('pushes with credentials from the environment, and reads back with them', async () => {
      const repository = `oci://${secure().host}/${g.repository}/auth`
      const repo = await threeKindRepo(await fresh(), repository)
      const credentials = { username: secure().username ?? '', password: secure().password ?? '' }
      const result = await publish({ input: repo, version: '1.0.0', access: { caFile: g.ground.ca.cert }, credentials })
      expect(result.alreadyPublished).toBe(false)
      const again = await publish({ input: repo, version: '1.0.0', access: { caFile: g.ground.ca.cert }, credentials })
      expect(again).toMatchObject({ alreadyPublished: true, digest: result.digest })
    })

    it('a wrong password fails clearly through the CLI (exit 4), and never prints the password', async () => {
      const repository = `oci://${secure().host}/${g.repository}/denied`
      const repo = await threeKindRepo(await fresh(), repository)
      const password = `wrong-${Math.random().toString(36).slice(2)}`
      const failed = await failureOf<ProcessFailure>(
        promisify(execFile)(
          process.execPath,
          [join(ROOT, 'bin/berth.js'), 'push', repo, '--version', '1.0.0', '--ca-file', g.ground.ca.cert],
          {
            env: { ...process.env, BERTH_REGISTRY_USERNAME: 'berth', BERTH_REGISTRY_PASSWORD: password },
          },
        ),
      )
      expect(failed.code).toBe(4)
      expect(failed.stderr).toMatch(/berth: cannot log in to 127\.0\.0\.1:\d+: unauthorized \(check the credentials/)
      expect(`${failed.stdout}${failed.stderr}`).not.toContain(password)
    })
  })

  it('the CLI prints JSON for scripts with -o json', async () => {
    const repository = `oci://${plain()}/${g.repository}/cli`
    const repo = await threeKindRepo(await fresh(), repository)
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [join(ROOT, 'bin/berth.js'), 'push', repo, '--version', '1.0.0', '--plain-http', '-o', 'json'],
      {
        env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' },
      },
    )
    const result = JSON.parse(stdout) as { reference: string; digest: string; alreadyPublished: boolean }
    expect(result).toMatchObject({ reference: `${plain()}/${g.repository}/cli:1.0.0`, alreadyPublished: false })
    expect((await fetchManifest(result.reference, { plainHttp: true })).digest).toBe(result.digest)
  })
})
