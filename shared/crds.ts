/** Waiting until the apiserver serves a CustomResourceDefinition. */
import type { Kube } from './kube.ts'

type WithConditions = { status?: { conditions?: Array<{ type: string; status: string }> } }

/** Wait until CRD `name` is Established; returns it as it is then. */
export async function waitEstablished<T extends object>(
  kube: Kube,
  name: string,
  timeoutMs = 30_000,
): Promise<(T & WithConditions) | undefined> {
  return await kube.waitFor<T & WithConditions>(
    { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name } },
    (crd) => crd?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false,
    timeoutMs,
  )
}

/**
 * Wait until `probe` would be admitted (a server-side dry run of applying it): after a CRD is Established, the
 * apiserver — its storage, and admission policies that need the new kind's schema — may still answer "not found" or
 * "unavailable" for a moment, and a client creating one at once fails. `admitted` judges the dry run's result: a
 * mutating policy just installed takes effect a moment after the apiserver accepts it.
 */
export async function waitAdmitted(
  kube: Kube,
  probe: { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } } & Record<string, unknown>,
  timeoutMs = 30_000,
  admitted: (result: { metadata?: { annotations?: Record<string, string> } }) => boolean = () => true,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      type Admitted = { metadata?: { name?: string; annotations?: Record<string, string> } }
      const result = await kube.apply<Admitted>(probe, { dryRun: true })
      if (admitted(result)) return
      if (Date.now() > deadline) throw new Error(`${probe.kind} ${probe.metadata.name} was admitted, but not as expected`)
    } catch (error: unknown) {
      if (Date.now() > deadline) throw error
    }
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}
