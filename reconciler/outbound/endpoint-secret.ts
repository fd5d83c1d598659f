/**
 * The Secret that says where an HTTP endpoint is and how to reach it, as notification receivers and metric checks
 * name one: `address`, optionally `token` and `ca.crt`. Read as the Environment's identity by its callers.
 */
import type { Kube } from '../../shared/kube.ts'

export type EndpointSecret = { address?: string | undefined; token?: string | undefined; ca?: string | undefined }

/** Secret `name`'s endpoint values (trimmed), or undefined when the Secret does not exist. */
export async function readEndpointSecret(
  kube: Kube,
  namespace: string,
  name: string,
): Promise<EndpointSecret | undefined> {
  const secret = await kube.get<{ data?: Record<string, string> }>({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace },
  })
  if (!secret) return undefined
  const value = (key: string): string | undefined => {
    const encoded = secret.data?.[key]
    return encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString('utf8').trim()
  }
  return { address: value('address'), token: value('token'), ca: value('ca.crt') }
}
