/**
 * Provenance in the cluster: the trusted keys of `spec.verify` (every `*.pub` in a Secret; any
 * one that verifies suffices, so keys rotate by adding the new one first) and the check that
 * the digest about to be applied is signed by one of them over exactly that digest.
 */
import { createHash } from 'node:crypto'
import { readPublicKey } from '../../shared/cosign.ts'
import { InvalidInputError } from '../../shared/errors.ts'
import type { Kube } from '../../shared/kube.ts'
import type { TrustedKey } from '../../shared/signatures.ts'

type KeysSecret = { data?: Record<string, string> }

/**
 * The trusted keys in Secret `name` of `namespace`, and a fingerprint of them (a verified digest
 * is checked again only when it changes). A missing Secret, or one without a valid key, stalls.
 */
export async function trustedKeys(
  kube: Kube,
  namespace: string,
  name: string,
  field = 'spec.verify.secretRef',
): Promise<{ keys: TrustedKey[]; fingerprint: string }> {
  const secret = await kube.get<KeysSecret>({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace } })
  const where = `${field}: Secret ${namespace}/${name}`
  if (!secret)
    throw new InvalidInputError(
      'VerificationFailed',
      `${where} does not exist; create it with the trusted cosign.pub keys`,
    )
  const keys: TrustedKey[] = []
  for (const [file, value] of Object.entries(secret.data ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!file.endsWith('.pub')) continue
    try {
      keys.push({ name: file, key: readPublicKey(Buffer.from(value, 'base64').toString('utf8'), file) })
    } catch {
      // One bad key does not hide the good ones; none at all stalls below.
    }
  }
  if (keys.length === 0) {
    throw new InvalidInputError('VerificationFailed', `${where} holds no valid *.pub key (cosign public keys, PEM)`)
  }
  const fingerprint = createHash('sha256')
    .update(keys.map((k) => `${k.name}=${k.key.export({ format: 'der', type: 'spki' }).toString('base64')}`).join('\n'))
    .digest('hex')
    .slice(0, 16)
  return { keys, fingerprint }
}
