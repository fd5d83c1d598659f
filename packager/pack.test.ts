import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { x as extract } from 'tar'
import { describe, expect, it } from 'vitest'
import { readArchive } from '../reconciler/source/extract.ts'
import type { KubeObject } from '../shared/manifests.ts'
import { packArchive } from './pack.ts'

const configMap = (name: string, namespace = 'shop'): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace },
  data: { LOG_LEVEL: 'info' },
})

// A file name past ustar's 100 bytes (and within the 255 a file system takes).
const LONG = `cfg-${'a'.repeat(150)}`

async function packed(): Promise<Buffer> {
  const environments = [
    { name: 'prod', objects: [configMap('web'), configMap(LONG)].map((object) => ({ object, source: 'x.yaml' })) },
    { name: 'dev', objects: [{ object: configMap('web', 'dev'), source: 'y.yaml' }] },
  ]
  return (await packArchive(environments, { version: '1.0.0' })).bytes
}

describe('packArchive', () => {
  it('writes a tar.gz that GNU tar, node-tar and the reconciler read alike, long names included', async () => {
    const bytes = await packed()
    const expected = [
      'berth-artifact.json',
      'dev/',
      'dev/dev_configmap_web.yaml',
      'prod/',
      `prod/shop_configmap_${LONG}.yaml`,
      'prod/shop_configmap_web.yaml',
    ]
    const dir = await mkdtemp(join(tmpdir(), 'berth-pack-'))
    try {
      const file = join(dir, 'a.tgz')
      await writeFile(file, bytes)
      const listed = (await execa('tar', ['-tzf', file])).stdout.split('\n')
      expect(listed).toStrictEqual(expected)
      const verbose = (await execa('tar', ['--numeric-owner', '-tvzf', file])).stdout
      for (const line of verbose.split('\n')) expect(line).toMatch(/^(-rw-r--r--|drwxr-xr-x) 0\/0 .* 1970-01-01 00:00 /)
      await extract({ file, cwd: dir, strict: true })
      const long = await readFile(join(dir, `prod/shop_configmap_${LONG}.yaml`), 'utf8')
      expect(long).toContain(`name: ${LONG}`)
      const read = await readArchive(bytes)
      expect([...read.keys()].sort()).toStrictEqual(expected.filter((p) => !p.endsWith('/')))
      expect(read.get(`prod/shop_configmap_${LONG}.yaml`)?.toString()).toBe(long)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('is reproducible: the same objects give the same bytes', async () => {
    expect((await packed()).equals(await packed())).toBe(true)
  })
})
