/**
 * DSSE envelopes (Dead Simple Signing Envelope, secure-systems-lab/dsse v1), as cosign writes and reads them for
 * attestations: the signature is ECDSA P-256 over SHA-256 of the pre-authentication encoding (PAE) of the payload
 * type and the payload bytes, never over the JSON around them.
 */
import type { KeyObject } from 'node:crypto'
import { z } from 'zod'
import { signPayload, verifyPayload } from './cosign.ts'

export const DSSE_ENVELOPE = 'application/vnd.dsse.envelope.v1+json'

const envelopeSchema = z.object({
  payloadType: z.string(),
  payload: z.string(),
  signatures: z.array(z.object({ keyid: z.string().optional(), sig: z.string() })).max(16),
})

/** `DSSEv1 <len> <type> <len> <body>`, lengths in bytes as decimal ASCII. */
export function pae(payloadType: string, body: Buffer): Buffer {
  const type = Buffer.from(payloadType)
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${body.length} `), body])
}

/** An envelope around `body`, signed with `key`: the bytes cosign stores as the attestation layer. */
export function seal(payloadType: string, body: Buffer, key: KeyObject): Buffer {
  const sig = signPayload(pae(payloadType, body), key)
  return Buffer.from(
    JSON.stringify({ payloadType, payload: body.toString('base64'), signatures: [{ keyid: '', sig }] }),
  )
}

export type Opened<K> = { body: Buffer; key: K } | { refused: string }

/**
 * The envelope's payload when one of its signatures verifies with one of `keys`; otherwise why not. The payload type
 * must be `payloadType`: a signature over another type says nothing about this one.
 */
export function open<K extends { key: KeyObject }>(bytes: Buffer, payloadType: string, keys: readonly K[]): Opened<K> {
  let parsed: z.infer<typeof envelopeSchema>
  try {
    parsed = envelopeSchema.parse(JSON.parse(bytes.toString('utf8')))
  } catch {
    return { refused: 'not a DSSE envelope' }
  }
  if (parsed.payloadType !== payloadType) return { refused: `payload type ${parsed.payloadType}, not ${payloadType}` }
  const body = Buffer.from(parsed.payload, 'base64')
  const signed = pae(parsed.payloadType, body)
  for (const { sig } of parsed.signatures) {
    const key = keys.find((k) => verifyPayload(signed, sig, k.key))
    if (key) return { body, key }
  }
  return { refused: 'signed by no trusted key, or altered' }
}
