/**
 * Whom berth acts as for an object a tenant wrote (an Environment, an EnvironmentSet): its ServiceAccount, named by its
 * spec or else by the reconciler's lockdown default, or the reconciler's own identity when there is neither.
 */
import { InvalidInputError } from '../../shared/errors.ts'
import { type Kube, KubeApiError } from '../../shared/kube.ts'
import { serviceAccountUser } from '../../api/environment.ts'
import type { ReconcileContext } from './pass.ts'

/**
 * The client that acts as ServiceAccount `named` (else the lockdown default) of `namespace`, which must exist: a
 * RoleBinding may name a ServiceAccount nobody has created yet, and impersonating that name would borrow rights no
 * account holds. `retry` ends the ServiceAccountNotFound message, saying what to do once the account exists.
 */
export async function actingAs(
  ctx: Pick<ReconcileContext, 'kube' | 'defaultServiceAccount'>,
  namespace: string,
  named: string | undefined,
  what: { needs: string; retry: string },
): Promise<Kube> {
  const name = named ?? ctx.defaultServiceAccount
  if (!name) return ctx.kube
  const ref = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace } }
  // Without the right to read ServiceAccounts the apiserver's refusals will say what is missing.
  const found = await ctx.kube.get(ref).catch((error: unknown) => {
    if (error instanceof KubeApiError && error.code === 403) return true
    throw error
  })
  if (!found) {
    const field = named ? 'spec.serviceAccountName' : 'the reconciler\'s --default-service-account'
    throw new InvalidInputError(
      'ServiceAccountNotFound',
      `${field}: ServiceAccount ${namespace}/${name} does not exist; create it, bind it the rights ${what.needs} `
      + `needs, then ${what.retry}`,
    )
  }
  return ctx.kube.as(serviceAccountUser(namespace, name))
}
