/** Shutdown signals for long-running commands (the reconciler, `status --watch`, the test ground). */

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
