/**
 * cosign signatures in the registry, as cosign's key-based (legacy) format keeps them: an OCI
 * manifest tagged `sha256-<hex>.sig` beside the artifact, one simple-signing layer per
 * signature, the signature in the layer's annotation. Signing appends a layer (read, append,
 * push); verifying accepts a signature only when it verifies with a trusted key *and* its
 * payload names exactly the digest being verified (Flux ignores that claim; berth does not).
 */
import { createPublicKey, type KeyObject } from 'node:crypto'
import { appendLayer, attachedLayers, attachedTag, type Layer, readBlob } from './cosign-tags.ts'
import {
  keyId,
  payloadDigest,
  SIGNATURE_ANNOTATION,
  signaturePayload,
  signPayload,
  SIMPLESIGNING,
  verifyPayload,
} from './cosign.ts'
import { InvalidInputError } from './errors.ts'
import type { OrasOptions } from './oras.ts'

/** The most of one signature payload berth reads (cosign's are a few hundred bytes). */
const MAX_SIGNATURE_BYTES = 64 * 1024
/** The most signatures of one digest berth checks. */
const MAX_SIGNATURES = 100

/** A public key someone trusts, with the name it is known by (a file or a Secret key). */
export type TrustedKey = { name: string; key: KeyObject }
/** Which trusted key verified the signature. */
export type Verified = { digest: string; key: string; keyId: string; signature: string }

/** `host/path:sha256-<hex>.sig`: where cosign keeps the signatures of `digest`. */
export function signatureTag(repository: string, digest: string): string {
  return attachedTag(repository, digest, 'sig')
}

/**
 * Sign `digest` of `repository` with `key`, adding a signature to any already there. Signing
 * again with a key that already signed this digest changes nothing. Returns the signature reference.
 */
export async function signArtifact(
  repository: string,
  digest: string,
  key: KeyObject,
  access: OrasOptions = {},
): Promise<{ reference: string; added: boolean }> {
  const reference = signatureTag(repository, digest)
  const layers = await signatureLayers(repository, digest, access)
  const own = { name: 'this key', key: createPublic(key) }
  for (const layer of layers) {
    if ((await checkLayer(repository, digest, layer, [own], access)).verified) return { reference, added: false }
  }
  const payload = signaturePayload(repository, digest)
  const annotations = { [SIGNATURE_ANNOTATION]: signPayload(payload, key) }
  await appendLayer(repository, reference, layers, payload, { mediaType: SIMPLESIGNING, annotations }, access)
  return { reference, added: true }
}

/**
 * Verify that `digest` of `repository` carries a signature by one of `keys` over exactly this
 * digest; throws `VerificationFailed` saying why not (unsigned, signed for another digest, or
 * signed by no trusted key).
 */
export async function verifyArtifact(
  repository: string,
  digest: string,
  keys: readonly TrustedKey[],
  access: OrasOptions = {},
): Promise<Verified> {
  const layers = await signatureLayers(repository, digest, access)
  const where = signatureTag(repository, digest)
  if (layers.length === 0) throw refused(`unsigned: no cosign signature for ${digest} (${where})`)
  if (layers.length > MAX_SIGNATURES) {
    throw new InvalidInputError('TooLarge', `${where} holds ${layers.length} signatures; berth checks at most ${MAX_SIGNATURES}`)
  }
  const claims = new Set<string>()
  for (const layer of layers) {
    const check = await checkLayer(repository, digest, layer, keys, access)
    if (check.verified) return check.verified
    if (check.otherDigest) claims.add(check.otherDigest)
  }
  if (claims.size > 0) {
    throw refused(
      `signed for another digest: the signature under ${where} names ${[...claims].join(', ')}, not ${digest}`,
    )
  }
  const names = keys.map((k) => k.name).join(', ')
  throw refused(
    `no signature of ${digest} verifies with a trusted key (${names}): ${layers.length} signature(s), `
    + 'made with an untrusted key or altered',
  )
}

const refused = (message: string): InvalidInputError => new InvalidInputError('VerificationFailed', message)

/** The signature layers of `digest`; none when no signature manifest exists. */
async function signatureLayers(repository: string, digest: string, access: OrasOptions): Promise<Layer[]> {
  return await attachedLayers(signatureTag(repository, digest), SIMPLESIGNING, access)
}

/** One signature: verified by a key, verified but for another digest, or neither. */
async function checkLayer(
  repository: string,
  digest: string,
  layer: Layer,
  keys: readonly TrustedKey[],
  access: OrasOptions,
): Promise<{ verified?: Verified; otherDigest?: string }> {
  const signature = layer.annotations?.[SIGNATURE_ANNOTATION]
  if (!signature) return {}
  // A signature payload is a few hundred bytes; oras holds the blob to its descriptor's size, so this bounds the read.
  if (layer.size > MAX_SIGNATURE_BYTES) {
    throw new InvalidInputError(
      'TooLarge',
      `the signature layer ${layer.digest} under ${signatureTag(repository, digest)} is ${layer.size} bytes; `
      + `a cosign signature payload is under ${MAX_SIGNATURE_BYTES / 1024} KiB: refusing to read it`,
    )
  }
  // oras checks the payload against its digest while downloading it.
  const payload = await readBlob(`${repository}@${layer.digest}`, access)
  const trusted = keys.find((k) => verifyPayload(payload, signature, k.key))
  if (!trusted) return {}
  const claim = payloadDigest(payload)
  if (claim !== digest) return { otherDigest: claim ?? '(no digest)' }
  return {
    verified: { digest, key: trusted.name, keyId: keyId(trusted.key), signature: signatureTag(repository, digest) },
  }
}

function createPublic(key: KeyObject): KeyObject {
  return key.type === 'private' ? createPublicKey(key) : key
}
