import { gunzipSync, gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { type RawEntry as Entry, rawTarGz } from '../../test/support/tar.ts'
import { readArchive, safePath } from './extract.ts'

const tarGz = (entries: readonly Entry[]): Promise<Buffer> => Promise.resolve(rawTarGz(entries))

describe('readArchive', () => {
  it('reads files and folders, normalising ./ prefixes', async () => {
    const files = await readArchive(
      await tarGz([
        { name: './dev/', type: 'Directory' },
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
      { name: 'dev/link', type: 'SymbolicLink', linkpath: '/etc/passwd' },
      /"dev\/link" is a symbolic link; only regular files and folders/,
    ],
    ['a hard link', { name: 'dev/hard', type: 'Link', linkpath: 'dev/a.yaml' }, /is a hard link; only regular files/],
    ['a character device', { name: 'dev/null', type: 'CharacterDevice' }, /is a character device/],
    ['a block device', { name: 'dev/sda', type: 'BlockDevice' }, /is a block device/],
    ['a fifo', { name: 'dev/pipe', type: 'FIFO' }, /is a fifo/],
    ['a name with a newline', { name: 'dev/a\nb.yaml', body: 'x' }, /entry "dev\/a\\nb\.yaml" has a control character/],
    ['a name with an escape character', { name: 'dev/\u001b[2J.yaml', body: 'x' }, /has a control character/],
  ])('refuses %s', async (_label, entry, message) => {
    await expect(readArchive(await tarGz([{ name: 'ok.yaml', body: 'a: 1' }, entry]))).rejects.toThrow(message)
  })

  it('refuses an entry name that is not valid UTF-8', async () => {
    // A name of raw bytes: 0xff is never valid in UTF-8. Written through a pax-free ustar header.
    const archive = await tarGz([{ name: 'ok.yaml', body: 'a: 1' }, { name: 'dev/\u00ff.yaml', body: 'x' }])
    const raw = gunzipSync(archive)
    // The encoder writes the name as UTF-8 (c3 bf); turn it into the lone byte ff plus a NUL.
    const at = raw.indexOf(Buffer.from('dev/\u00ff.yaml'))
    raw.set([0xff, 0x2e, 0x79, 0x61, 0x6d, 0x6c, 0x00], at + 4)
    fixChecksum(raw, at - (at % 512))
    await expect(readArchive(gzipSync(raw))).rejects.toThrow(/an entry name is not valid UTF-8/)
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

// A ustar header's checksum: the sum of its 512 bytes with the checksum field read as spaces.
function fixChecksum(tar: Buffer, header: number): void {
  tar.fill(0x20, header + 148, header + 156)
  let sum = 0
  for (let i = header; i < header + 512; i++) sum += tar[i] ?? 0
  tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, header + 148, 'latin1')
}
