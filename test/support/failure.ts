/** The error a promise rejects with; fails the test if it resolves instead. */
export async function failureOf<E = Error>(promise: Promise<unknown>): Promise<E> {
  try {
    await promise
  } catch (error: unknown) {
    return error as E
  }
  throw new Error('expected a failure, but the call succeeded')
}

/** What a failed child process (execFile) carries. */
export type ProcessFailure = { code: number; stdout: string; stderr: string }
