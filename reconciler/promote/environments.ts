/**
 * What the SRE commands do to Environments, by the reconciler's own rules: read one, change
 * one as the person running the command (with a refusal that says who may not do what), and
 * say who that person is. `cli/` parses flags and prints; the deciding lives here.
 */
import { environmentRef, type Environment } from '../../api/environment.ts'
import { RemoteError, UsageError } from '../../shared/errors.ts'
import { type Kube, KubeApiError } from '../../shared/kube.ts'

export async function getEnvironment(kube: Kube, namespace: string, name: string): Promise<Environment> {
  const env = await kube.get<Environment>(environmentRef(namespace, name))
  if (!env) throw new UsageError('NotFound', `environment ${namespace}/${name} not found (berth status -A lists them)`)
  return env
}

/**
 * Patch Environment `name` as the person running the command; a refusal by RBAC says who may not
 * do what, and that nothing changed (berth-view sees, berth-promote changes).
 */
export async function change(
  kube: Kube,
  namespace: string,
  name: string,
  verb: string,
  patch: object,
): Promise<Environment> {
  try {
    return await kube.mergePatch<Environment>(environmentRef(namespace, name), patch)
  } catch (error: unknown) {
    if (!(error instanceof KubeApiError && error.code === 403)) throw error
    const message
      = `${await whoAmI(kube)} is not allowed to ${verb} ${namespace}/${name}; nothing changed. `
        + `Ask for the berth-promote role in ${namespace} (the apiserver said: ${error.detail})`
    throw new RemoteError('Forbidden', message, { cause: error })
  }
}

/** Who the apiserver says this client is (SelfSubjectReview), impersonation included; 'unknown' if it will not say. */
export async function whoAmI(kube: Kube): Promise<string> {
  try {
    const review = await kube.create<{
      apiVersion: string
      kind: string
      metadata: { namespace?: string }
      status?: { userInfo?: { username?: string } }
    }>({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview', metadata: {} })
    return review.status?.userInfo?.username ?? 'unknown'
  } catch {
    return 'unknown'
  }
}
