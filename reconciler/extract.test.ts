import { gzipSync } from 'node:zlib'
import { type Header, pack } from 'tar-stream'
import { describe, expect, it } from 'vitest'
import { readArchive, safePath } from './extract.ts'

type Entry = Partial<Header> & { name: string; body?: string | Buffer }

async function tarGz(entries: readonly Entry[]): Promise<Buffer> {
  const archive = pack()
  const chunks: Buffer[] = []
  archive.on('data', (c: unknown) => chunks.push(c as Buffer))
  const done = new Promise<void>((resolve) => archive.on('end', () => resolve()))
  for (const { body, ...header } of entries) {
    if (body === undefined) archive.entry(header)
    else archive.entry(header, body)
  }
  archive.finalize()
  await done
  return gzipSync(Buffer.concat(chunks))
}

describe('readArchive', () => {
  it('reads files and folders, normalising ./ prefixes', async () => {
    const files = await readArchive(
      await tarGz([
        { name: './dev/', type: 'directory' },
        { name: './dev/a.yaml', body: 'a: 1\n' },
        { name: 'x.json', body: '{}' },
      ]),
    )
    expect([...files.keys()]).toEqual(['dev/a.yaml', 'x.json'])
    expect(files.get('dev/a.yaml')?.toString()).toBe('a: 1\n')
  })

  it.each<[string, Entry, RegExp]>([
    ['an absolute path', { name: '/etc/passwd', body: 'x' }, /"\/etc\/passwd" has an absolute path or "\.\."/],
    ['a path climbing out', { name: 'dev/../../escape.yaml', body: 'x' }, /has an absolute path or "\.\."/],
    [
      'a symlink',
      { name: 'dev/link', type: 'symlink', linkname: '/etc/passwd' },
      /"dev\/link" is a symlink; only regular files and folders/,
    ],
    ['a hard link', { name: 'dev/hard', type: 'link', linkname: 'dev/a.yaml' }, /is a link; only regular files/],
    [
      'a character device',
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 },
      /is a character-device/,
    ],
    ['a fifo', { name: 'dev/pipe', type: 'fifo' }, /is a fifo/],
  ])('refuses %s', async (_label, entry, message) => {
    await expect(readArchive(await tarGz([{ name: 'ok.yaml', body: 'a: 1' }, entry]))).rejects.toThrow(message)
  })

  it('refuses an archive larger than the limit once decompressed, however small compressed', async () => {
    const bomb = await tarGz([{ name: 'zeros.yaml', body: Buffer.alloc(8 * 1024 * 1024) }])
    expect(bomb.length).toBeLessThan(64 * 1024)
    await expect(readArchive(bomb, { uncompressedBytes: 1024 * 1024, entries: 10 })).rejects.toMatchObject({
      reason: 'TooLarge',
    })
  })

  it('refuses too many entries', async () => {
    const many = await tarGz(Array.from({ length: 12 }, (_, i) => ({ name: `f${i}.yaml`, body: 'a: 1' })))
    await expect(readArchive(many, { uncompressedBytes: 1024 * 1024, entries: 10 })).rejects.toMatchObject({
      reason: 'TooManyEntries',
    })
  })

  it('refuses something that is not a tar.gz', async () => {
    await expect(readArchive(Buffer.from('not gzip at all'))).rejects.toMatchObject({ reason: 'InvalidArchive' })
  })
})

describe('safePath', () => {
  it.each([
    ['a/b.yaml', 'a/b.yaml'],
    ['./a//b.yaml', 'a/b.yaml'],
    ['a/./b', 'a/b'],
    ['../a', undefined],
    ['a/../../b', undefined],
    ['/a', undefined],
    ['C:/x', undefined],
    ['a\\..\\b', undefined],
  ])('%s → %s', (input, expected) => {
    expect(safePath(input)).toBe(expected)
  })
})
