/**
 * Defensive reading of an artifact's tar.gz (node-tar's parser), entirely in memory: only regular files and
 * folders; no absolute paths, no `..`, no links or devices; the uncompressed size and the
 * number of entries bounded, so a gzip or tar bomb stops early instead of filling memory.
 */
import { createGunzip } from 'node:zlib'
import { Parser, type ReadEntry } from 'tar'
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

/** What an entry is, in words, for a refusal. */
const KINDS: Readonly<Record<string, string>> = {
  SymbolicLink: 'symbolic link',
  Link: 'hard link',
  CharacterDevice: 'character device',
  BlockDevice: 'block device',
  FIFO: 'fifo',
  ContiguousFile: 'contiguous file',
}

/** Read every file of a tar.gz into memory, refusing anything unsafe. Paths are normalised (`./a` → `a`). */
export async function readArchive(
  gzipped: Buffer,
  limits: ArchiveLimits = DEFAULT_LIMITS,
): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>()
  let total = 0
  let entries = 0
  let refused: UnsafeArchiveError | undefined
  // node-tar's parser (strict: a malformed header is an error, not a warning); pax records are applied to the
  // entry they describe before it is seen here.
  const parser = new Parser({ strict: true })
  const fail = (reason: string, message: string): void => {
    refused ??= new UnsafeArchiveError(reason, `artifact refused: ${message}`)
  }
  parser.on('entry', (entry: ReadEntry) => {
    const problem = refused ? undefined : check(entry)
    if (problem) fail(...problem)
    if (refused || entry.type === 'Directory') {
      entry.resume()
      return
    }
    const path = safePath(entry.path) ?? ''
    const chunks: Buffer[] = []
    entry.on('data', (chunk: Buffer) => {
      total += chunk.length
      if (total > limits.uncompressedBytes) fail('TooLarge', `more than ${limits.uncompressedBytes} bytes uncompressed`)
      else chunks.push(chunk)
    })
    entry.on('end', () => {
      if (refused) return
      if (files.has(path)) fail('DuplicateEntry', `entry "${path}" appears twice`)
      else files.set(path, Buffer.concat(chunks))
    })
  })

  /** Why `entry` is refused, before any of its bytes are read; undefined when it may be read. */
  const check = (entry: ReadEntry): [string, string] | undefined => {
    entries++
    if (entries > limits.entries) return ['TooManyEntries', `more than ${limits.entries} entries`]
    const name = entry.path
    // The parser decodes names as UTF-8; bytes that are not valid UTF-8 come out as U+FFFD.
    if (name.includes('\uFFFD')) return ['UnsafePath', 'an entry name is not valid UTF-8']
    // eslint-disable-next-line no-control-regex -- control characters are what this refuses
    if (/[\u0000-\u001f\u007f]/.test(name)) return ['UnsafePath', `entry ${JSON.stringify(name)} has a control character`]
    if (safePath(name) === undefined) return ['UnsafePath', `entry "${name}" has an absolute path or ".." in it`]
    if (entry.type !== 'File' && entry.type !== 'OldFile' && entry.type !== 'Directory') {
      const kind = KINDS[entry.type] ?? entry.type.toLowerCase()
      return ['UnsafeEntry', `entry "${name}" is a ${kind}; only regular files and folders are allowed`]
    }
    if (total + entry.size > limits.uncompressedBytes) {
      return ['TooLarge', `more than ${limits.uncompressedBytes} bytes uncompressed`]
    }
    return undefined
  }

  // Tar adds a 512-byte header and up to 511 bytes of padding per entry, plus pax records.
  const inflatedLimit = limits.uncompressedBytes + limits.entries * 1536 + 1024 * 1024
  try {
    await new Promise<void>((resolve, reject) => {
      const gunzip = createGunzip()
      let inflated = 0
      gunzip.on('data', (chunk: Buffer) => {
        // Stop a gzip bomb at the decompressor, before the tar parser sees the bytes.
        inflated += chunk.length
        if (inflated > inflatedLimit) {
          fail('TooLarge', `decompresses to more than ${limits.uncompressedBytes} bytes`)
          gunzip.destroy()
          resolve()
        } else if (refused) {
          gunzip.destroy()
          resolve()
        } else {
          parser.write(chunk)
        }
      })
      gunzip.on('end', () => parser.end())
      gunzip.on('error', reject)
      parser.on('error', reject)
      parser.on('end', resolve)
      gunzip.end(gzipped)
    })
  } catch (error: unknown) {
    if (refused) throw refused
    throw new InvalidInputError(
      'InvalidArchive',
      `artifact refused: not a readable tar.gz (${error instanceof Error ? error.message : String(error)})`,
      { cause: error },
    )
  }
  if (refused) throw refused
  return files
}

/** `a/b.yaml` for a safe entry name, undefined for an absolute one or one that climbs out. */
export function safePath(name: string): string | undefined {
  if (name.includes('\0') || name.includes('\\')) return undefined
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return undefined
  const parts = name.split('/').filter((p) => p !== '' && p !== '.')
  if (parts.some((p) => p === '..')) return undefined
  return parts.join('/')
}
