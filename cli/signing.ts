/**
 * Provenance on the command line: `berth keygen`, `berth sign REF`, `berth verify REF`, `berth attestations`, and the
 * key loading `berth push --sign` shares. Keys are cosign's: a cosign key pair works here, and a
 * berth key pair with cosign. `--key` is a file or `env://VAR` (a key held in a CI secret); the
 * private key's password comes from BERTH_COSIGN_PASSWORD, never from the command line.
 */
import type { KeyObject } from 'node:crypto'
import { access, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Command } from 'commander'
import { UsageError } from '../shared/errors.ts'
import type { OrasOptions } from '../shared/oras.ts'
import { type Output, outputOption, print, table } from './flags.ts'

export type Access = { plainHttp?: boolean; caFile?: string; insecure?: boolean; registryConfig?: string }

/** The registry flags `berth push` takes, on another command. */
export function registryFlags(command: Command): Command {
  return command
    .option('--plain-http', 'the registry speaks plain HTTP')
    .option('--ca-file <file>', 'CA bundle that signed the registry certificate')
    .option('--insecure', 'do not verify the registry certificate')
    .option('--registry-config <file>', 'credentials file (Docker config format; default: oras/Docker lookup)')
}

export function accessOf(options: Access): OrasOptions {
  return {
    ...(options.plainHttp ? { plainHttp: true } : {}),
    ...(options.caFile ? { caFile: options.caFile } : {}),
    ...(options.insecure ? { insecure: true } : {}),
    ...(options.registryConfig ? { registryConfig: options.registryConfig } : {}),
  }
}

/** The text of `--key`: a file, or `env://VAR`. */
async function keyText(spec: string): Promise<string> {
  if (spec.startsWith('env://')) {
    const name = spec.slice('env://'.length)
    const value = process.env[name]
    if (!value) throw new UsageError('NoKey', `--key ${spec}: the environment variable ${name} is not set`)
    return value
  }
  return await readFile(spec, 'utf8').catch((error: unknown) => {
    throw new UsageError(
      'NoKey',
      `--key ${spec}: cannot read it (${error instanceof Error ? error.message : String(error)})`,
    )
  })
}

function password(): string {
  const value = process.env.BERTH_COSIGN_PASSWORD
  if (value === undefined) {
    throw new UsageError('NoPassword', 'set BERTH_COSIGN_PASSWORD to the private key\'s password (empty for none)')
  }
  return value
}

/** The signing key named by `--key`, decrypted with BERTH_COSIGN_PASSWORD. */
export async function signingKey(spec: string): Promise<KeyObject> {
  return await (await decryptingKey(spec)).key
}

/**
 * Starts decrypting the key named by `--key`: resolves as soon as its scrypt runs on libuv's thread pool, with the
 * key to come. A key or password that cannot be read throws here; a wrong password rejects `key`, marked handled so
 * that it surfaces where `key` is awaited, not as an unhandled rejection while other work runs first.
 */
export async function decryptingKey(spec: string): Promise<{ key: Promise<KeyObject> }> {
  const { readPrivateKey } = await import('../shared/cosign.ts')
  const key = readPrivateKey(await keyText(spec), password())
  key.catch(() => undefined)
  return { key }
}

/** `host/path:tag` or `host/path@sha256:…` → repository and the digest it names now. */
async function resolveReference(
  reference: string,
  access: OrasOptions,
): Promise<{ repository: string; digest: string }> {
  const match = /^([^@]+?)(?::([^/:@]+))?(?:@(sha256:[a-f0-9]{64}))?$/.exec(reference)
  const repository = match?.[1]
  if (!repository || (!match[2] && !match[3])) {
    throw new UsageError('InvalidReference', `${reference}: write host/path:version or host/path@sha256:<digest>`)
  }
  const { fetchManifest } = await import('../shared/oras.ts')
  return { repository, digest: (await fetchManifest(reference, access)).digest }
}

export function registerSigning(program: Command): void {
  program
    .command('keygen')
    .description('write a cosign key pair (cosign.key, encrypted with BERTH_COSIGN_PASSWORD, and cosign.pub)')
    .option('--output-dir <dir>', 'where to write them', '.')
    .action(async (options: { outputDir: string }) => {
      const { generateKeyPair } = await import('../shared/cosign.ts')
      const files = { key: join(options.outputDir, 'cosign.key'), pub: join(options.outputDir, 'cosign.pub') }
      for (const file of Object.values(files)) {
        const exists = await access(file).then(
          () => true,
          () => false,
        )
        if (exists) throw new UsageError('KeyExists', `${resolve(file)} exists; never overwritten (move it away first)`)
      }
      const pair = generateKeyPair(password())
      await writeFile(files.key, pair.privateKey, { mode: 0o600, flag: 'wx' })
      await writeFile(files.pub, pair.publicKey, { mode: 0o644, flag: 'wx' })
      process.stdout.write(`wrote ${files.key} (private, keep it secret) and ${files.pub}\n`)
    })

  registryFlags(
    program
      .command('sign')
      .description('sign a published version (cosign key-based format); another signature is added, none replaced')
      .argument('<ref>', 'host/path:version or host/path@sha256:<digest>')
      .requiredOption('--key <file|env://VAR>', 'cosign private key'),
  ).action(async (reference: string, options: Access & { key: string }) => {
    const access = accessOf(options)
    const key = await signingKey(options.key)
    const { repository, digest } = await resolveReference(reference, access)
    const { signArtifact } = await import('../shared/signatures.ts')
    const signed = await signArtifact(repository, digest, key, access)
    process.stdout.write(
      `${signed.added ? 'signed' : 'already signed by this key:'} ${repository}@${digest}\nsignature ${signed.reference}\n`,
    )
  })

  registryFlags(
    program
      .command('verify')
      .description('check that a version is signed by a trusted key over exactly its digest (exit 0, else 3)')
      .argument('<ref>', 'host/path:version or host/path@sha256:<digest>')
      .requiredOption(
        '--key <file>',
        'cosign public key (cosign.pub); repeatable: any one that verifies suffices',
        (v: string, all: string[]) => [...all, v],
        [] as string[],
      ),
  ).action(async (reference: string, options: Access & { key: string[] }) => {
    const access = accessOf(options)
    const [{ readPublicKey }, { verifyArtifact }] = await Promise.all([
      import('../shared/cosign.ts'),
      import('../shared/signatures.ts'),
    ])
    const keys = await Promise.all(
      options.key.map(async (file) => ({ name: file, key: readPublicKey(await keyText(file), file) })),
    )
    const { repository, digest } = await resolveReference(reference, access)
    const verified = await verifyArtifact(repository, digest, keys, access)
    process.stdout.write(`verified ${repository}@${digest} with ${verified.key} (${verified.keyId})\n`)
  })

  registryFlags(
    program
      .command('attestations')
      .description('who attested a version healthy (or failed), when, and with which key (spec.attest)')
      .argument('<repository>', 'oci://host/path')
      .argument('<version>', 'the version (tag) or sha256:<digest>')
      .option(
        '--key <file>',
        'cosign public key to verify with (repeatable); without, every attestation shows as unverified',
        (v: string, all: string[]) => [...all, v],
        [] as string[],
      )
      .addOption(outputOption()),
  ).action(async (repository: string, version: string, options: Access & { key: string[]; output: Output }) => {
    const access = accessOf(options)
    const [{ readPublicKey }, { listAttestations }] = await Promise.all([
      import('../shared/cosign.ts'),
      import('../shared/attestations.ts'),
    ])
    const keys = await Promise.all(
      options.key.map(async (file) => ({ name: file, key: readPublicKey(await keyText(file), file) })),
    )
    const bare = repository.replace(/^oci:\/\//, '')
    const reference = version.startsWith('sha256:') ? `${bare}@${version}` : `${bare}:${version}`
    const { digest } = await resolveReference(reference, access)
    const { where, listed } = await listAttestations(bare, digest, keys, access)
    const rows = listed.map((a) => ({
      identity: a.predicate ? `${a.predicate.cluster}/${a.predicate.namespace}/${a.predicate.environment}` : '',
      version: a.predicate?.version ?? '',
      result: a.predicate?.result ?? '',
      readySince: a.predicate?.readySince ?? '',
      attestedAt: a.predicate?.attestedAt ?? '',
      key: a.key ?? '',
      keyId: a.keyId ?? '',
      ...(a.refused ? { unverified: a.refused } : {}),
    }))
    await print(options.output, { reference: `${bare}@${digest}`, attestations: where, listed: rows }, () => {
      if (rows.length === 0) return `no attestations of ${bare}@${digest} (${where})\n`
      return table([
        ['IDENTITY', 'VERSION', 'RESULT', 'READY SINCE', 'ATTESTED', 'KEY'],
        ...rows.map((r) => [r.identity || '?', r.version, r.result, r.readySince, r.attestedAt,
          r.key ? `${r.key} (${r.keyId})` : `unverified: ${r.unverified ?? ''}`]),
      ])
    })
  })
}
