/**
 * `spec.decryption`: the SOPS-encrypted Secrets of the version being applied, decrypted in memory just before the dry
 * run and the apply. The age identities are the `*.agekey` entries of a Secret in the Environment's namespace (Flux's
 * convention: one repository works with either tool), read as the Environment's identity. Each encrypted Secret's
 * file, as SOPS wrote it, is in the artifact (`berth.dev/sops-source`); it is decrypted with its MAC checked, and the
 * rendered Secret's encrypted values must be exactly the file's. Nothing decrypted is kept: not across passes, not on
 * disk, not in any message (which name object and file, never a value).
 */
import * as jsYaml from 'js-yaml'
import { InvalidInputError } from '../../shared/errors.ts'
import type { Kube } from '../../shared/kube.ts'
import { describeObject, type KubeObject, type Located } from '../../shared/manifests.ts'
import { decryptSopsFile, DecryptionError, isSopsSecret, sealedValues, SOPS_SOURCE } from '../../shared/sops.ts'

type Decryption = { provider: 'sops'; secretRef: { name: string } }

/** `objects` with every SOPS Secret decrypted; the same array when there is none. */
export async function decryptObjects(
  kube: Kube,
  namespace: string,
  decryption: Decryption | undefined,
  objects: readonly Located[],
  files: ReadonlyMap<string, Buffer>,
): Promise<readonly Located[]> {
  const encrypted = objects.filter((o) => isSopsSecret(o.object))
  if (encrypted.length === 0) return objects
  const first = encrypted[0] as Located
  if (!decryption) {
    throw new DecryptionError(
      `${describeObject(first.object)} (${first.source}) is SOPS-encrypted, but spec.decryption is not set: `
      + 'name the Secret with the age keys (decryption: {provider: sops, secretRef: {name: sops-age}})',
    )
  }
  const identities = await ageIdentities(kube, namespace, decryption.secretRef.name)
  // One file may hold several Secrets: decrypted once per pass.
  const opened = new Map<string, Promise<{ plain: unknown[]; sealed: unknown[] }>>()
  const open = (path: string): Promise<{ plain: unknown[]; sealed: unknown[] }> => {
    let found = opened.get(path)
    if (!found) {
      const text = files.get(path)?.toString('utf8')
      found = text === undefined
        ? Promise.reject(new DecryptionError(`the artifact has no ${path}`))
        : decryptSopsFile(text, identities).then((plain) => ({
            plain,
            sealed: jsYaml.loadAll(text, undefined, { schema: jsYaml.CORE_SCHEMA }),
          }))
      found.catch(() => undefined)
      opened.set(path, found)
    }
    return found
  }
  const out: Located[] = []
  for (const located of objects) {
    if (!isSopsSecret(located.object)) {
      out.push(located)
      continue
    }
    const where = `${describeObject(located.object)} (${located.source})`
    const path = (located.object.metadata.annotations as Record<string, string> | undefined)?.[SOPS_SOURCE]
    try {
      if (!path) throw new DecryptionError('the artifact does not say which SOPS file it comes from (berth push does)')
      out.push({ ...located, object: plaintextOf(located.object, await open(path)) })
    } catch (error: unknown) {
      const why = error instanceof Error ? error.message : String(error)
      throw new DecryptionError(`${where}, SOPS file ${path ?? '?'}: ${why}; nothing of this version was applied`)
    }
  }
  return out
}

/**
 * The Secret as it is applied: its encrypted values replaced by the file's plaintext, without SOPS' block or berth's
 * annotation. Each encrypted value must be the file's, at the same key: what the MAC vouches for.
 */
function plaintextOf(object: KubeObject, file: { plain: unknown[]; sealed: unknown[] }): KubeObject {
  // The same keys with the same ciphertexts (checkObjects let nothing in clear through): what the MAC vouches for.
  const sealed = sealedValues(object)
  const index = file.sealed.findIndex((doc) => typeof doc === 'object' && doc !== null && sealedValues(doc) === sealed)
  const plain = file.plain[index] as Record<string, unknown> | undefined
  if (index < 0 || !plain) throw new DecryptionError('its encrypted values are not the file\'s: they were changed')
  const rest = Object.fromEntries(Object.entries(object).filter(([key]) => key !== 'sops')) as KubeObject
  const given = (object.metadata.annotations ?? {}) as Record<string, string>
  const annotations = Object.fromEntries(Object.entries(given).filter(([key]) => key !== SOPS_SOURCE))
  const metadata = { ...object.metadata }
  if (Object.keys(annotations).length > 0) metadata.annotations = annotations
  else delete metadata.annotations
  const out: KubeObject = { ...rest, metadata }
  for (const field of ['data', 'stringData']) {
    if (object[field] !== undefined) out[field] = plain[field]
  }
  return out
}

/** The age identities in Secret `name`: every `AGE-SECRET-KEY-1…` line of its `*.agekey` entries. */
async function ageIdentities(kube: Kube, namespace: string, name: string): Promise<string[]> {
  const secret = await kube.get<{ data?: Record<string, string> }>({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace },
  })
  const where = `spec.decryption.secretRef: Secret ${namespace}/${name}`
  if (!secret) throw new InvalidInputError('DecryptionFailed', `${where} does not exist; create it with the age key(s) as *.agekey`)
  const identities = Object.entries(secret.data ?? {})
    .filter(([key]) => key.endsWith('.agekey'))
    .flatMap(([, value]) => Buffer.from(value, 'base64').toString('utf8').split('\n'))
    .map((line) => line.trim())
    .filter((line) => line.startsWith('AGE-SECRET-KEY-'))
  if (identities.length === 0) {
    throw new InvalidInputError('DecryptionFailed', `${where} holds no age key: put one under a key ending in .agekey`)
  }
  return identities
}
