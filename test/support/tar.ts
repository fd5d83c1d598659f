/**
 * Tar archives written by hand for tests, entry by entry, with node-tar's header encoder: any
 * type (links, devices, fifos) and any name, as another tool or an attacker could write them.
 */
import { gzipSync } from 'node:zlib'
import { Header, type HeaderData } from 'tar'

export type RawEntry = { name: string; body?: string | Buffer; type?: HeaderData['type']; linkpath?: string }

const BLOCK = 512

export function rawTar(entries: readonly RawEntry[]): Buffer {
  const out: Buffer[] = []
  for (const { name, body, type, linkpath } of entries) {
    const bytes = body === undefined ? Buffer.alloc(0) : Buffer.from(body)
    const header = new Header({
      path: name,
      type: type ?? (body === undefined ? 'Directory' : 'File'),
      mode: 0o644,
      size: bytes.length,
      mtime: new Date(0),
      ...(linkpath ? { linkpath } : {}),
    })
    header.encode()
    if (!header.block) throw new Error(`cannot encode ${name}`)
    out.push(header.block, bytes, Buffer.alloc((BLOCK - (bytes.length % BLOCK)) % BLOCK))
  }
  out.push(Buffer.alloc(BLOCK * 2))
  return Buffer.concat(out)
}

export function rawTarGz(entries: readonly RawEntry[]): Buffer {
  return gzipSync(rawTar(entries))
}
