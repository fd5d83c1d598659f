/**
 * The one module that runs the `oras` CLI.
 *
 * Arguments always go as an array (never through a shell); passwords go on stdin, never on
 * the command line where `ps` would show them. Output is read from `--format json` and
 * checked with zod. oras exits 1 for every failure, so failures are classified from stderr
 * into the four kinds callers act on: not found, unauthorized, unreachable, invalid.
 */
import { join } from 'node:path'
import { execa, type ExecaError } from 'execa'
import { z } from 'zod'
import { EnvironmentError, InvalidInputError, RemoteError } from './errors.ts'

/** How to reach a registry. */
export type RegistryAccess = {
  /** Plain HTTP (`--plain-http`), for a registry without TLS. */
  plainHttp?: boolean
  /** CA bundle that signed the registry's certificate. */
  caFile?: string
  /** Skip TLS verification (`--insecure`). For tests and emergencies only. */
  insecure?: boolean
  /** Docker-style credentials file (`--registry-config`); default: oras's own lookup. */
  registryConfig?: string
}

export type OrasOptions = RegistryAccess & {
  /** oras binary; default `$BERTH_ORAS`, then `oras` on PATH. */
  binary?: string
  /** Working folder: oras names a pushed layer after the path it was given, relative to this. */
  cwd?: string
  /** Cancels the run (shutdown): the oras process is killed. */
  signal?: AbortSignal
  /** Deadline of one oras run in milliseconds; default `$BERTH_ORAS_TIMEOUT_MS`, else 120 s. */
  timeoutMs?: number
  /** Waits for this run's turn on its registry (the reconciler's per-host bound); told how the run ended. */
  gate?: () => Promise<(error?: unknown) => void>
}

export type OrasFailureKind
  = 'not-found' | 'unauthorized' | 'unreachable' | 'digest-mismatch' | 'timeout' | 'cancelled' | 'invalid'

/** A registry operation failed; `failure` says why, `message` says what to do. */
export class OrasError extends RemoteError {
  readonly failure: OrasFailureKind

  constructor(failure: OrasFailureKind, message: string, options?: { cause?: unknown }) {
    super(REASONS[failure], message, options)
    this.failure = failure
  }
}

const REASONS: Record<OrasFailureKind, string> = {
  'not-found': 'ArtifactNotFound',
  'unauthorized': 'RegistryUnauthorized',
  'unreachable': 'RegistryUnreachable',
  'digest-mismatch': 'DigestMismatch',
  'timeout': 'Timeout',
  'cancelled': 'ShuttingDown',
  'invalid': 'RegistryRefused',
}

const DEFAULT_TIMEOUT_MS = 120_000

/**
 * What a registry can make berth hold in memory, at most. A manifest: 4 MiB, as the OCI
 * distribution spec lets registries and clients refuse beyond (oras's JSON wrapping adds a
 * little). A tag list: 1 MiB of names (some 40,000 tags). Beyond either, reason TooLarge.
 */
export const LIMITS = { manifestBytes: 4 * 1024 * 1024 + 64 * 1024, tagListBytes: 1024 * 1024 } as const

const descriptor = z.object({
  reference: z.string(),
  mediaType: z.string(),
  digest: z.string().regex(/^sha256:[a-f0-9]{64}$/),
  size: z.number().int().nonnegative(),
  annotations: z.record(z.string(), z.string()).optional(),
})

const pushOutput = descriptor.extend({
  artifactType: z.string().optional(),
  referenceAsTags: z.array(z.string()).optional(),
})
export type PushResult = z.infer<typeof pushOutput>

const pullOutput = z.object({
  reference: z.string(),
  files: z.array(descriptor.extend({ path: z.string() })),
})
export type PullResult = z.infer<typeof pullOutput>

const manifestOutput = descriptor.extend({ content: z.record(z.string(), z.unknown()) })
export type FetchedManifest = z.infer<typeof manifestOutput>

/** Store credentials for `registry` (host:port) in the credentials file. */
export async function login(
  registry: string,
  credentials: { username: string; password: string },
  options: OrasOptions = {},
): Promise<void> {
  await run(
    ['login', registry, '--username', credentials.username, '--password-stdin', ...accessFlags(options)],
    options,
    {
      what: `log in to ${registry}`,
      stdin: credentials.password,
    },
  )
}

/** Log in to `repository`'s registry into a credentials file of `dir`'s, which `access` names from then on. */
export async function loginInto(
  dir: string,
  repository: string,
  credentials: { username: string; password: string },
  access: RegistryAccess,
): Promise<void> {
  access.registryConfig = join(dir, 'registry-auth.json')
  await login(repository.split('/')[0] ?? repository, credentials, access)
}

export type PushRequest = {
  /** Files to push as layers, each `path` relative to `cwd`, with its media type. */
  files: ReadonlyArray<{ path: string; mediaType: string }>
  annotations?: Readonly<Record<string, string>>
  artifactType?: string
  config?: { path: string; mediaType: string }
}

/**
 * Push `request.files` as one manifest tagged `reference`. With `ociLayout`, `reference` is
 * `<folder>:<tag>` of a local OCI image layout: nothing leaves the machine, and the digest
 * is known before any registry is touched.
 */
export async function push(
  reference: string,
  request: PushRequest,
  options: OrasOptions & { ociLayout?: boolean } = {},
): Promise<PushResult> {
  const args = [
    'push',
    reference,
    '--format',
    'json',
    '--no-tty',
    ...(options.ociLayout ? ['--oci-layout'] : accessFlags(options)),
  ]
  if (request.artifactType) args.push('--artifact-type', request.artifactType)
  if (request.config) args.push('--config', `${request.config.path}:${request.config.mediaType}`)
  for (const [key, value] of Object.entries(request.annotations ?? {})) args.push('--annotation', `${key}=${value}`)
  for (const file of request.files) args.push(`${file.path}:${file.mediaType}`)
  return parseJson(await run(args, options, { what: `push ${reference}` }), pushOutput, 'oras push')
}

/** Copy `layoutReference` (`<folder>:<tag>` of an OCI layout) to the registry `reference`, byte for byte. */
export async function copyFromLayout(
  layoutReference: string,
  reference: string,
  options: OrasOptions = {},
): Promise<void> {
  const to = accessFlags(options).map((flag) => (flag.startsWith('--') ? `--to-${flag.slice(2)}` : flag))
  await run(['cp', '--from-oci-layout', layoutReference, reference, '--no-tty', ...to], options, {
    what: `push ${reference}`,
  })
}

/** Tags of `repository` (`host/path`). A repository that does not exist yet has none. */
export async function listTags(repository: string, options: OrasOptions = {}): Promise<string[]> {
  try {
    const out = await run(['repo', 'tags', repository, ...accessFlags(options)], options, {
      what: `list the tags of ${repository}`,
      maxBytes: LIMITS.tagListBytes,
    })
    return out
      .split('\n')
      .map((t) => t.trim())
      .filter((t) => t.length > 0)
  } catch (error: unknown) {
    if (error instanceof OrasError && error.failure === 'not-found') return []
    throw error
  }
}

/** Download the blob `reference` (`host/path@sha256:…`) to `outFile`; oras checks its digest while reading. */
export async function fetchBlob(reference: string, outFile: string, options: OrasOptions = {}): Promise<void> {
  await run(['blob', 'fetch', reference, '--output', outFile, '--no-tty', ...accessFlags(options)], options, {
    what: `fetch ${reference}`,
  })
}

/** Upload `file` as a blob of `repository` (`host/path`); the registry checks it against its digest. */
export async function pushBlob(
  repository: string,
  digest: string,
  file: string,
  options: OrasOptions = {},
): Promise<void> {
  await run(['blob', 'push', `${repository}@${digest}`, file, '--no-tty', ...accessFlags(options)], options, {
    what: `push a blob to ${repository}`,
  })
}

/** Push the manifest in `file` (exactly its bytes) as `reference` (`host/path:tag`). */
export async function pushManifest(
  reference: string,
  file: string,
  mediaType: string,
  options: OrasOptions = {},
): Promise<void> {
  const args = ['manifest', 'push', reference, file, '--media-type', mediaType, ...accessFlags(options)]
  await run(args, options, { what: `push the manifest ${reference}` })
}

/** Pull every layer of `reference` into `outputDir`. */
export async function pull(reference: string, outputDir: string, options: OrasOptions = {}): Promise<PullResult> {
  const args = ['pull', reference, '--output', outputDir, '--format', 'json', '--no-tty', ...accessFlags(options)]
  return parseJson(await run(args, options, { what: `pull ${reference}` }), pullOutput, 'oras pull')
}

/** Fetch and parse the manifest `reference` (a tag or a digest) points at. */
export async function fetchManifest(reference: string, options: OrasOptions = {}): Promise<FetchedManifest> {
  const args = ['manifest', 'fetch', reference, '--format', 'json', ...accessFlags(options)]
  return parseJson(
    await run(args, options, { what: `fetch the manifest of ${reference}`, maxBytes: LIMITS.manifestBytes }),
    manifestOutput,
    'oras manifest fetch',
  )
}

/** Delete the manifest `reference` (`host/path@sha256:…`) from the registry, and so every tag that points at it. */
export async function deleteManifest(reference: string, options: OrasOptions = {}): Promise<void> {
  await run(['manifest', 'delete', '--force', reference, ...accessFlags(options)], options, {
    what: `delete the manifest ${reference}`,
  })
}

function accessFlags(access: RegistryAccess): string[] {
  const flags: string[] = []
  if (access.plainHttp) flags.push('--plain-http')
  if (access.caFile) flags.push('--ca-file', access.caFile)
  if (access.insecure) flags.push('--insecure')
  if (access.registryConfig) flags.push('--registry-config', access.registryConfig)
  return flags
}

/** What one oras run is for (said in its errors), its input, and the most of its output berth reads. */
type Call = { what: string; stdin?: string; maxBytes?: number }

async function run(args: string[], options: OrasOptions, call: Call): Promise<string> {
  const release = options.gate ? await options.gate() : undefined
  try {
    const stdout = await runOras(args, options, call)
    release?.()
    return stdout
  } catch (error: unknown) {
    release?.(error)
    throw error
  }
}

async function runOras(args: string[], options: OrasOptions, call: Call): Promise<string> {
  const binary = options.binary ?? process.env.BERTH_ORAS ?? 'oras'
  const timeoutMs = options.timeoutMs ?? (Number(process.env.BERTH_ORAS_TIMEOUT_MS) || DEFAULT_TIMEOUT_MS)
  try {
    const result = await execa(binary, args, {
      ...(options.cwd ? { cwd: options.cwd } : {}),
      ...(options.signal ? { cancelSignal: options.signal } : {}),
      // A registry that stops answering must not hold a reconcile pass (and its queue slot) forever.
      timeout: timeoutMs,
      input: call.stdin ?? '',
      // oras prints progress bars and colours only to a TTY; never let a caller's env change that.
      env: { NO_COLOR: '1' },
      // A registry's answer is read up to a bound, never without limit.
      maxBuffer: call.maxBytes ?? 16 * 1024 * 1024,
    })
    return result.stdout
  } catch (error: unknown) {
    const failure = error as ExecaError
    if (failure.code === 'ENOENT') {
      throw new EnvironmentError(
        'OrasMissing',
        `oras was not found (${binary}). Install oras v1.3 or newer on PATH, or set BERTH_ORAS to its path.`,
        { cause: error },
      )
    }
    if (failure.timedOut) {
      throw new OrasError('timeout', `cannot ${call.what}: no answer within ${timeoutMs / 1000} s`, { cause: error })
    }
    if (failure.isMaxBuffer) {
      const mib = ((call.maxBytes ?? 16 * 1024 * 1024) / 1024 / 1024).toFixed(0)
      throw new InvalidInputError(
        'TooLarge',
        `cannot ${call.what}: the registry's answer is over ${mib} MiB; berth reads no more (nothing was used)`,
        { cause: error },
      )
    }
    if (failure.isCanceled) {
      throw new OrasError('cancelled', `cannot ${call.what}: cancelled (shutting down)`, { cause: error })
    }
    const stderr = typeof failure.stderr === 'string' ? failure.stderr : ''
    throw orasFailure(call.what, stderr, error)
  }
}

/** Turn oras's stderr into a classified, actionable error. Exported for unit tests. */
export function orasFailure(what: string, stderr: string, cause?: unknown): OrasError {
  const detail = errorLines(stderr)
  const kind = classify(detail)
  const hint: Record<OrasFailureKind, string> = {
    'not-found': 'check the repository and tag',
    'unauthorized':
      'check the credentials: `oras login <registry>`, --registry-config, or the username/password given to berth',
    'unreachable': /x509|certificate/i.test(detail)
      ? 'the registry certificate is not trusted: pass its CA file'
      : 'check the registry address, that it is running, and plain HTTP vs TLS',
    'digest-mismatch': 'the registry served bytes that are not the ones named by their digest; nothing was used',
    'timeout': 'the registry did not answer in time',
    'cancelled': 'berth is shutting down',
    'invalid': 'the registry refused the request',
  }
  return new OrasError(kind, `cannot ${what}: ${KIND_TEXT[kind]} (${hint[kind]}). oras said: ${detail}`, { cause })
}

const KIND_TEXT: Record<OrasFailureKind, string> = {
  'not-found': 'not found',
  'unauthorized': 'unauthorized',
  'unreachable': 'registry unreachable',
  'digest-mismatch': 'digest mismatch',
  'timeout': 'timed out',
  'cancelled': 'cancelled',
  'invalid': 'refused',
}

const UNREACHABLE
  = /connection refused|no such host|dial tcp|i\/o timeout|x509|certificate|tls:|http: server gave HTTP response|connection reset|EOF$/im

function classify(detail: string): OrasFailureKind {
  if (/\b401\b|unauthorized|credential not found|authentication required/i.test(detail)) return 'unauthorized'
  // oras-go's ErrMismatchedDigest, ErrTrailingData, ErrInvalidDescriptorSize: bytes that do not fit their descriptor.
  if (/mismatched digest|digest mismatch|trailing data|invalid descriptor size/i.test(detail)) return 'digest-mismatch'
  if (/: not found\b|\b404\b|manifest unknown|name unknown|not found$/im.test(detail)) return 'not-found'
  if (UNREACHABLE.test(detail)) return 'unreachable'
  return 'invalid'
}

// oras writes progress ("Preparing f.txt") before its error; keep the error itself.
function errorLines(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('WARNING'))
  const first = lines.findIndex((l) => /^Error/.test(l))
  const kept = first >= 0 ? lines.slice(first) : lines.slice(-3)
  return kept.join(' ').replace(/^Error:\s*/, '') || '(no error text)'
}

function parseJson<T>(stdout: string, schema: z.ZodType<T>, command: string): T {
  let value: unknown
  try {
    value = JSON.parse(stdout)
  } catch (error: unknown) {
    throw new EnvironmentError(
      'OrasOutput',
      `${command} printed something that is not JSON; is the oras on PATH v1.3 or newer?`,
      { cause: error },
    )
  }
  const parsed = schema.safeParse(value)
  if (!parsed.success) {
    throw new EnvironmentError(
      'OrasOutput',
      `${command} printed unexpected JSON (${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}); is the oras on PATH v1.3 or newer?`,
    )
  }
  return parsed.data
}
