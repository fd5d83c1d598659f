import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { x as extract, list } from 'tar'
import { parse } from 'yaml'
import { describe, expect, it } from 'vitest'
import { packageRepository } from '../packager/package.ts'
import { METADATA_FILE, metadataSchema } from '../shared/artifact.ts'
import { berthYaml, configMap, exampleRepo, threeKindRepo, writeTree } from './support/config-repo.ts'
import { ROOT, useGround } from './support/ground.ts'
import { failureOf, type ProcessFailure } from './support/failure.ts'

const g = useGround(import.meta.url)
const REPO = 'oci://registry.example.com/team/config'
let n = 0
const fresh = async (): Promise<string> => {
  const dir = join(g.scratch(), `case-${++n}`)
  await mkdir(dir)
  return dir
}

async function unpack(file: string): Promise<string> {
  const out = await fresh()
  await extract({ file, cwd: out })
  return out
}

describe('berth package', () => {
  it('renders plain YAML, a kustomize overlay and a Helm chart into one folder per environment', async () => {
    const repo = await threeKindRepo(await fresh(), REPO)
    const result = await packageRepository({ dir: repo, version: 'v1.2.3', out: join(repo, 'out.tgz') })
    expect(result.tag).toBe('1.2.3')

    const out = await unpack(result.file)
    expect((await readdir(out)).sort()).toEqual([METADATA_FILE, 'dev', 'prod', 'staging'])
    expect((await readdir(join(out, 'dev'))).sort()).toEqual([
      'dev_configmap_alpha.yaml',
      'dev_configmap_beta.yaml',
      'dev_configmap_gamma.yaml',
    ])
    expect(parse(await readFile(join(out, 'staging', 'staging_configmap_settings.yaml'), 'utf8'))).toMatchObject({
      metadata: { namespace: 'staging' },
      data: { env: 'staging' },
    })
    expect(parse(await readFile(join(out, 'prod', 'prod_configmap_prod-settings.yaml'), 'utf8'))).toMatchObject({
      data: { greeting: 'hello prod', replicas: '3' },
    })

    const metadata = metadataSchema.parse(JSON.parse(await readFile(join(out, METADATA_FILE), 'utf8')))
    expect(metadata.version).toBe('1.2.3')
    expect(Object.fromEntries(Object.entries(metadata.environments).map(([k, v]) => [k, v.objects]))).toEqual({
      dev: 3,
      staging: 1,
      prod: 1,
    })
    for (const [path, digest] of Object.entries(metadata.environments.dev?.files ?? {})) {
      expect(
        `sha256:${createHash('sha256')
          .update(await readFile(join(out, path)))
          .digest('hex')}`,
      ).toBe(digest)
    }
  })

  it('is reproducible: the same input gives the same bytes, whatever the files\' times or the folder', async () => {
    const first = await exampleRepo(await fresh())
    const second = await exampleRepo(await fresh())
    await utimes(join(second, 'base', 'deployment.yaml'), new Date('2001-01-01'), new Date('2001-01-01'))
    const a = await packageRepository({ dir: first, version: '1.0.0', out: join(first, 'a.tgz') })
    const b = await packageRepository({ dir: second, version: '1.0.0', out: join(second, 'b.tgz') })
    const c = await packageRepository({ dir: first, version: '1.0.0', out: join(first, 'c.tgz') })
    expect(a.digest).toBe(b.digest)
    expect((await readFile(a.file)).equals(await readFile(c.file))).toBe(true)

    // The archive itself carries nothing machine-specific.
    const entries: Array<{
      path: string
      mode: number
      uid: number
      gid: number
      mtime: number
      uname: string
      type: string
    }> = []
    await list({
      file: a.file,
      onReadEntry: (e) =>
        entries.push({
          path: e.path,
          mode: e.mode ?? -1,
          uid: e.uid ?? 0,
          gid: e.gid ?? 0,
          mtime: e.mtime?.getTime() ?? 0,
          uname: e.uname ?? '',
          type: e.type,
        }),
    })
    expect(entries.map((e) => e.path)).toEqual([...entries.map((e) => e.path)].sort())
    expect(
      new Set(entries.map((e) => `${e.type}:${e.mode.toString(8)}:${e.uid}:${e.gid}:${e.mtime}:${e.uname}`)),
    ).toEqual(new Set(['File:644:0:0:0:', 'Directory:755:0:0:0:']))
    // The metadata file, eight objects in each of dev, staging and prod, the CRD in platform, and the SOPS file the
    // encrypted Secret comes from.
    expect(entries.filter((e) => e.type === 'File')).toHaveLength(1 + 3 * 8 + 1 + 1)
    // gzip header: no timestamp (bytes 4–7 are MTIME).
    expect((await readFile(a.file)).subarray(4, 8).equals(Buffer.alloc(4))).toBe(true)
  })

  it('packages the shipped example with every kind of object the README promises', async () => {
    const result = await packageRepository({
      dir: await exampleRepo(await fresh()),
      version: '1.0.0',
      out: join(await fresh(), 'x.tgz'),
    })
    const out = await unpack(result.file)
    const kinds = async (env: string): Promise<string[]> => {
      const found = new Set<string>()
      for (const file of await readdir(join(out, env)))
        found.add((parse(await readFile(join(out, env, file), 'utf8')) as { kind: string }).kind)
      return [...found].sort()
    }
    expect(await kinds('prod')).toEqual([
      'ConfigMap',
      'Deployment',
      'FeatureFlag',
      'HorizontalPodAutoscaler',
      'Ingress',
      'Namespace',
      // SOPS-encrypted: kept encrypted, no --allow-secrets needed.
      'Secret',
      'Service',
    ])
    // The CRD every environment's FeatureFlag needs is applied once, by its own environment.
    expect(await kinds('platform')).toEqual(['CustomResourceDefinition'])
  })

  describe('refuses bad input with a clear error and writes nothing', () => {
    const cases: Array<[string, Record<string, string | object>, RegExp, boolean?]> = [
      [
        'a document without kind',
        { 'm/a.yaml': 'apiVersion: v1\nmetadata:\n  name: x\n' },
        /m\/a\.yaml#1: object has no kind/,
      ],
      [
        'a document without metadata.name',
        { 'm/a.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n' },
        /m\/a\.yaml#1: ConfigMap has no metadata\.name/,
      ],
      [
        'YAML that does not parse',
        { 'm/a.yaml': `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkey: [unclosed\n` },
        /m\/a\.yaml:\d+:\d+: not valid YAML/,
      ],
      [
        'the same object twice',
        { 'm/a.yaml': configMap('dup', { a: '1' }, 'x'), 'm/b.yaml': configMap('dup', { a: '2' }, 'x') },
        /ConfigMap x\/dup is defined twice \(first at m\/a\.yaml#1\)/,
      ],
      [
        'a Secret with literal data',
        {
          'm/s.yaml': {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { name: 'db' },
            stringData: { password: 'hunter2' },
          },
        },
        /Secret db carries literal data.*--allow-secrets/,
      ],
    ]
    it.each(cases)('%s', async (_label, files, message) => {
      const repo = await writeTree(await fresh(), {
        'berth.yaml': berthYaml(REPO, { dev: { manifests: 'm' } }),
        ...files,
      })
      const out = join(repo, 'out.tgz')
      await expect(packageRepository({ dir: repo, version: '1.0.0', out })).rejects.toThrow(message)
      expect(existsSync(out)).toBe(false)
      expect((await readdir(repo)).filter((f) => f.includes('partial'))).toEqual([])
    })

    it('a Secret with literal data passes with --allow-secrets, and the password never shows in an error', async () => {
      const repo = await writeTree(await fresh(), {
        'berth.yaml': berthYaml(REPO, { dev: { manifests: 'm' } }),
        'm/s.yaml': { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db' }, stringData: { password: 'hunter2' } },
      })
      const refused = await failureOf(packageRepository({ dir: repo, version: '1.0.0', out: join(repo, 'a.tgz') }))
      expect(refused.message).not.toContain('hunter2')
      await expect(
        packageRepository({ dir: repo, version: '1.0.0', out: join(repo, 'a.tgz'), allowSecrets: true }),
      ).resolves.toMatchObject({ tag: '1.0.0' })
    })

    it.each([
      ['1.2', /is not a semantic version/],
      ['1.2.3+build.7', /build metadata \(\+build\.7\).*release it as 1\.2\.3/],
      ['latest', /is not a semantic version/],
    ])('version %s', async (version, message) => {
      const repo = await threeKindRepo(await fresh(), REPO)
      await expect(packageRepository({ dir: repo, version, out: join(repo, 'o.tgz') })).rejects.toThrow(message)
      expect(existsSync(join(repo, 'o.tgz'))).toBe(false)
    })

    it('a broken kustomize overlay or Helm chart says which and why', async () => {
      const repo = await threeKindRepo(await fresh(), REPO)
      await writeFile(join(repo, 'overlay', 'kustomization.yaml'), 'resources: [missing.yaml]\n')
      await expect(packageRepository({ dir: repo, version: '1.0.0', out: join(repo, 'o.tgz') })).rejects.toThrow(
        /cannot render the kustomize overlay overlay: .*missing\.yaml/,
      )

      const helmRepo = await threeKindRepo(await fresh(), REPO)
      await writeFile(join(helmRepo, 'chart', 'templates', 'bad.yaml'), '{{ .Values.nope.deeper }}\n')
      await expect(
        packageRepository({ dir: helmRepo, version: '1.0.0', out: join(helmRepo, 'o.tgz') }),
      ).rejects.toThrow(/cannot render the helm chart chart: .*nil pointer/)
    })
  })

  it('the CLI prints the file and digest, and exits 3 on refused input', async () => {
    const repo = await threeKindRepo(await fresh(), REPO)
    const run = promisify(execFile)
    const { stdout } = await run(process.execPath, [
      join(ROOT, 'bin/berth.js'),
      'package',
      repo,
      '--version',
      '2.0.0',
      '-o',
      join(repo, 'cli.tgz'),
    ])
    expect(stdout).toMatch(
      /^packaged 2\.0\.0: dev \(3 objects\), prod \(1 object\), staging \(1 object\)\n.*cli\.tgz {2}sha256:[a-f0-9]{64} {2}\d+ bytes\n$/,
    )

    await writeFile(join(repo, 'plain', 'bad.yaml'), 'kind: ConfigMap\n')
    const failed = await failureOf<ProcessFailure>(
      run(process.execPath, [join(ROOT, 'bin/berth.js'), 'package', repo, '--version', '2.0.1']),
    )
    expect(failed).toMatchObject({
      code: 3,
      stderr: expect.stringContaining('plain/bad.yaml#1: ConfigMap has no apiVersion, metadata.name'),
    })

    // A name the apiserver would refuse (or read as a path) is refused at release time, by the reconciler's rule.
    await writeFile(join(repo, 'plain', 'bad.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ../../etc}\n')
    const named = await failureOf<ProcessFailure>(
      run(process.execPath, [join(ROOT, 'bin/berth.js'), 'package', repo, '--version', '2.0.1']),
    )
    expect(named).toMatchObject({
      code: 3,
      stderr: expect.stringContaining(
        'plain/bad.yaml#1: ConfigMap: metadata.name "../../etc" is not valid: it must be a lowercase RFC 1123 subdomain',
      ),
    })
  })
})
