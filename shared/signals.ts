/**
 * Shutdown signals for long-running commands (the reconciler, `status --watch`, the test ground),
 * and a pause that a shutdown cuts short.
 */

const SIGNALS = ['SIGTERM', 'SIGINT'] as const
const CODES = { SIGINT: 130, SIGTERM: 143 } as const

/**
 * Resolves on the first SIGTERM or SIGINT; a second one exits at once (128 + signal number),
 * for someone pressing Ctrl-C again. The listeners stay registered (`process.on`, not `once`):
 * execa's signal-exit re-raises a signal it believes nobody else handles, which would kill
 * the process by that signal mid-shutdown whenever a subprocess happened to be running.
 */
export function firstSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let received = false
    for (const signal of SIGNALS) {
      process.on(signal, () => {
        if (received) process.exit(CODES[signal])
        received = true
        resolve(signal)
      })
    }
  })
}

/** Wait `ms`, or less when `signal` aborts (shutdown): never rejects. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer)
        resolve()
      },
      { once: true },
    )
  })
}
