import { chmod, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { orasFailure } from './oras.ts'

// Real stderr text of oras v1.3.6, captured against docker-registry 2.8.
const cases = [
  {
    kind: 'unauthorized',
    stderr:
      'WARNING! Using --password via the CLI is insecure. Use --password-stdin.\nPreparing f.txt\nError response from registry: HEAD "https://127.0.0.1:40279/v2/x/y/manifests/sha256:0ac3": response status code 401: Unauthorized\n',
  },
  {
    kind: 'unauthorized',
    stderr:
      'Preparing f.txt\nError: basic credential not found\nPlease check whether the registry credential stored in the authentication file at "/root/.docker/config.json" is correct\n',
  },
  {
    kind: 'not-found',
    stderr:
      'Error response from registry: failed to fetch the content of "127.0.0.1:46337/x/y:9.9.9": 127.0.0.1:46337/x/y:9.9.9: not found\n',
  },
  {
    kind: 'unreachable',
    stderr:
      'Preparing f.txt\nError: Head "http://127.0.0.1:1/v2/x/y/manifests/sha256:0ac3": dial tcp 127.0.0.1:1: connect: connection refused\n',
  },
  {
    kind: 'unreachable',
    stderr:
      'Error: Get "https://127.0.0.1:40279/v2/": tls: failed to verify certificate: x509: certificate signed by unknown authority\n',
  },
  { kind: 'invalid', stderr: 'Error: invalid reference: invalid tag "1.0.0+build"\n' },
  {
    kind: 'digest-mismatch',
    stderr: 'Error: failed to fetch 127.0.0.1:5000/x/y@sha256:0ac3: mismatched digest\n',
  },
] as const

describe('orasFailure', () => {
  it.each(cases)('classifies "$stderr" as $kind', ({ kind, stderr }) => {
    expect(orasFailure('push x', stderr).failure).toBe(kind)
  })

  it('keeps the error line, drops progress and warnings, and says what to do', () => {
    const error = orasFailure('push 127.0.0.1:1/x:1.0.0', cases[3].stderr)
    expect(error.message).toBe(
      'cannot push 127.0.0.1:1/x:1.0.0: registry unreachable (check the registry address, that it is running, and plain HTTP vs TLS). '
      + 'oras said: Head "http://127.0.0.1:1/v2/x/y/manifests/sha256:0ac3": dial tcp 127.0.0.1:1: connect: connection refused',
    )
    expect(error.reason).toBe('RegistryUnreachable')
    expect(error.exitCode).toBe(4)
  })

  it('points at the CA file when the certificate is not trusted', () => {
    expect(orasFailure('pull x', cases[4].stderr).message).toContain(
      'the registry certificate is not trusted: pass its CA file',
    )
  })
})

describe('what a registry can make berth hold is bounded', () => {
  // The real oras refuses a manifest over 4 MiB itself (oras-go's limit) and a real registry cannot be made to list
  // a megabyte of tags in a test's time: a stand-in oras prints an endless answer instead.
  const fake = async (): Promise<string> => {
    const path = join(await mkdtemp(join(tmpdir(), 'fake-oras-')), 'oras')
    await writeFile(path, '#!/bin/sh\nexec yes 0123456789abcdef0123456789abcdef\n')
    await chmod(path, 0o755)
    return path
  }

  it('a manifest answer over 4 MiB and a tag list over 1 MiB are refused as TooLarge, not read on', async () => {
    const { fetchManifest, listTags } = await import('./oras.ts')
    const binary = await fake()
    await expect(fetchManifest('r.example/x:1.0.0', { binary })).rejects.toMatchObject({
      reason: 'TooLarge',
      message: expect.stringContaining('over 4 MiB; berth reads no more'),
    })
    await expect(listTags('r.example/x', { binary })).rejects.toMatchObject({
      reason: 'TooLarge',
      message: expect.stringContaining('over 1 MiB'),
    })
  })
})
