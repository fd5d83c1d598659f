/** Polling for what a real process does in its own time. */

/** Read until `ok` accepts the value or `timeoutMs` runs out (then throw, showing the last value). */
export async function eventually<T>(
  read: () => Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs: number,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await read()
    if (ok(value)) return value
    if (Date.now() > deadline)
      throw new Error(
        `not reached within ${timeoutMs} ms: ${((JSON.stringify(value) as string | undefined) ?? String(value)).slice(0, 2000)}`,
      )
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

/** Poll until `check` passes; returns how long it took. */
export async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now()
  await eventually(check, (passed) => passed, timeoutMs, 50)
  return Date.now() - started
}
