/**
 * The promotion gate's rule, in one place for the reconciler's gate phase and for
 * `berth promote --from`: a digest is proven on an upstream Environment once an application of
 * it there Succeeded (history), whatever the upstream runs or says at this moment.
 */
import type { EnvironmentStatus, HistoryEntry } from '../../api/environment.ts'

/** Whether `digest` Succeeded on the upstream whose status this is. */
export function provenOn(upstream: EnvironmentStatus | undefined, digest: string): boolean {
  return (upstream?.history ?? []).some((h) => h.digest === digest && h.result === 'Succeeded')
}

/** The newest application that Succeeded on the upstream: what the gate lets through, and promote --from pins. */
export function newestProven(upstream: EnvironmentStatus | undefined): HistoryEntry | undefined {
  return (upstream?.history ?? []).findLast((h) => h.result === 'Succeeded')
}
