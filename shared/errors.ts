/**
 * Typed errors at berth's boundaries.
 *
 * Every error berth raises on purpose is a {@link BerthError}: it carries a `reason` that
 * reads well as a Kubernetes condition reason (PascalCase), and its class says two things:
 * the exit code the CLI's one top-level catch returns, and the {@link ErrorKind} that decides
 * what the reconciler does next. The original error is kept as `cause`, never swallowed.
 */

/**
 * What the reconciler does after an error, as Flux's reconcilers decide it:
 * - `stalling`: the input cannot work as written (spec, artifact); retrying the same input fails
 *   the same way, so nothing is retried until the spec changes.
 * - `waiting`: a condition outside berth must come true first (a promotion gate, a version
 *   not yet published); come back after a fixed delay, without growing backoff.
 * - `generic`: anything else (registry, apiserver, timeouts); retry with exponential backoff.
 */
export type ErrorKind = 'stalling' | 'waiting' | 'generic'

/** Base of every error berth raises on purpose. */
export class BerthError extends Error {
  /** Condition-style reason, e.g. `Unauthorized`, `InvalidSpec`. */
  readonly reason: string
  /** Process exit code the CLI uses for this error. */
  readonly exitCode: number = 1
  /** What the reconciler does next. */
  readonly kind: ErrorKind = 'generic'

  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.reason = reason
  }
}

/** The user must change their input (flags, spec, files); retrying the same input fails the same way. */
export class UsageError extends BerthError {
  override readonly exitCode = 2
  override readonly kind = 'stalling'
}

/** The input is well formed but refused (bad artifact, invalid manifest, immutability breach). */
export class InvalidInputError extends BerthError {
  override readonly exitCode = 3
  override readonly kind = 'stalling'
}

/** Something berth talks to (registry, apiserver) refused or failed; may succeed later. */
export class RemoteError extends BerthError {
  override readonly exitCode = 4
}

/** A required tool or environment piece is missing or broken on this machine. */
export class EnvironmentError extends BerthError {
  override readonly exitCode = 5
}

/** Not yet: something outside berth must happen first; the reconciler comes back after `retryAfterMs`. */
export class WaitingError extends BerthError {
  override readonly kind = 'waiting'
  readonly retryAfterMs: number

  constructor(reason: string, message: string, retryAfterMs: number, options?: { cause?: unknown }) {
    super(reason, message, options)
    this.retryAfterMs = retryAfterMs
  }
}

/** The kind of any thrown value: berth's own errors say it; anything else is generic. */
export function kindOf(error: unknown): ErrorKind {
  return error instanceof BerthError ? error.kind : 'generic'
}

/** The message of any thrown value. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
