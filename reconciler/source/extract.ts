/**
 * Defensive reading of an artifact's tar.gz, entirely in memory: only regular files and
 * folders; no absolute paths, no `..`, no links or devices; the uncompressed size and the
 * number of entries bounded, so a gzip or tar bomb stops early instead of filling memory.
 */
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import { extract as tarExtract } from 'tar-stream'
import { InvalidInputError } from '../../shared/errors.ts'

export type ArchiveLimits = {
  /** Bytes of all files after decompression. */
  uncompressedBytes: number
  /** Entries (files and folders). */
  entries: number
}

export const DEFAULT_LIMITS: ArchiveLimits = { uncompressedBytes: 64 * 1024 * 1024, entries: 20_000 }

/** Why an archive was refused; the reason reads as a condition reason. */
export class UnsafeArchiveError extends InvalidInputError {}

/** Read every file of a tar.gz into memory, refusing anything unsafe. Paths are normalised (`./a` → `a`). */
export async function readArchive(
  gzipped: Buffer,
  limits: ArchiveLimits = DEFAULT_LIMITS,
): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>()
  let total = 0
  let entries = 0
  // Names as raw bytes (latin1 maps bytes 1:1), so invalid UTF-8 is seen instead of turned into U+FFFD.
  const extractor = tarExtract({ filenameEncoding: 'latin1' } as Parameters<typeof tarExtract>[0])
  extractor.on('entry', (header, stream, next) => {
    const fail = (reason: string, message: string): void => {
      // Destroying the extractor errors the entry stream too; the pipeline reports it once.
      stream.on('error', () => undefined)
      stream.resume()
      extractor.destroy(new UnsafeArchiveError(reason, `artifact refused: ${message}`))
    }
    entries++
    if (entries > limits.entries) return fail('TooManyEntries', `more than ${limits.entries} entries`)
    const name = entryName(header)
    if (name === undefined) return fail('UnsafePath', `an entry name is not valid UTF-8`)
    // eslint-disable-next-line no-control-regex -- control characters are what this refuses
    if (/[\u0000-\u001f\u007f]/.test(name))
      return fail('UnsafePath', `entry ${JSON.stringify(name)} has a control character`)
    const path = safePath(name)
    if (path === undefined) return fail('UnsafePath', `entry "${name}" has an absolute path or ".." in it`)
    if (header.type === 'directory') {
      stream.resume()
      stream.on('end', next)
      return
    }
    if (header.type !== 'file')
      return fail(
        'UnsafeEntry',
        `entry "${header.name}" is a ${header.type}; only regular files and folders are allowed`,
      )
    if (total + header.size > limits.uncompressedBytes)
      return fail('TooLarge', `more than ${limits.uncompressedBytes} bytes uncompressed`)
    const chunks: Buffer[] = []
    stream.on('data', (chunk: unknown) => {
      const bytes = chunk as Buffer
      total += bytes.length
      chunks.push(bytes)
    })
    stream.on('end', () => {
      if (files.has(path)) return fail('DuplicateEntry', `entry "${path}" appears twice`)
      files.set(path, Buffer.concat(chunks))
      next()
    })
  })
  let inflated = 0
  // Tar adds a 512-byte header and up to 511 bytes of padding per entry, plus pax records.
  const inflatedLimit = limits.uncompressedBytes + limits.entries * 1536 + 1024 * 1024
  const gunzip = createGunzip()
  // Stop a gzip bomb at the decompressor, before tar parsing sees the bytes.
  gunzip.on('data', (chunk: Buffer) => {
    inflated += chunk.length
    if (inflated > inflatedLimit)
      gunzip.destroy(
        new UnsafeArchiveError(
          'TooLarge',
          `artifact refused: decompresses to more than ${limits.uncompressedBytes} bytes`,
        ),
      )
  })
  try {
    await pipeline(Readable.from([gzipped]), gunzip, extractor)
  } catch (error: unknown) {
    if (error instanceof UnsafeArchiveError) throw error
    throw new InvalidInputError(
      'InvalidArchive',
      `artifact refused: not a readable tar.gz (${error instanceof Error ? error.message : String(error)})`,
      { cause: error },
    )
  }
  return files
}

/**
 * An entry's name as text; undefined when it is not valid UTF-8. A pax `path` record (already
 * decoded as UTF-8 by tar-stream) must not carry the replacement character either.
 */
function entryName(header: { name: string; pax?: unknown }): string | undefined {
  if ((header.pax as { path?: string } | null | undefined)?.path !== undefined)
    return header.name.includes('\uFFFD') ? undefined : header.name
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(header.name, 'latin1'))
  } catch {
    return undefined
  }
}

/** `a/b.yaml` for a safe entry name, undefined for an absolute one or one that climbs out. */
export function safePath(name: string): string | undefined {
  if (name.includes('\0') || name.includes('\\')) return undefined
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return undefined
  const parts = name.split('/').filter((p) => p !== '' && p !== '.')
  if (parts.some((p) => p === '..')) return undefined
  return parts.join('/')
}
