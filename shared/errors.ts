/**
 * Typed errors at berth's boundaries.
 *
 * Every error berth raises on purpose is a {@link BerthError}: it carries a `reason` that
 * reads well as a Kubernetes condition reason (PascalCase) and says what should happen next
 * through its class. The CLI's one top-level catch maps the class to an exit code; the
 * reconciler maps it to "stalled" (no retry until the spec changes), "waiting" (retry later)
 * or "retry with backoff". The original error is kept as `cause`, never swallowed.
 */

/** Base of every error berth raises on purpose. */
export class BerthError extends Error {
  /** Condition-style reason, e.g. `Unauthorized`, `InvalidSpec`. */
  readonly reason: string
  /** Process exit code the CLI uses for this error. */
  readonly exitCode: number = 1

  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.reason = reason
  }
}

/** The user must change their input (flags, spec, files); retrying the same input fails the same way. */
export class UsageError extends BerthError {
  override readonly exitCode = 2
}

/** The input is well formed but refused (bad artifact, invalid manifest, immutability breach). */
export class InvalidInputError extends BerthError {
  override readonly exitCode = 3
}

/** Something berth talks to (registry, apiserver) refused or failed; may succeed later. */
export class RemoteError extends BerthError {
  override readonly exitCode = 4
}

/** A required tool or environment piece is missing or broken on this machine. */
export class EnvironmentError extends BerthError {
  override readonly exitCode = 5
}

/** Narrow an unknown thrown value to an Error, wrapping anything else. */
export function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value))
}
