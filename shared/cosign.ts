/**
 * cosign's key-based signatures, the format cosign v2 and v3 and Flux all verify offline:
 * keys, the simple-signing payload, and ECDSA P-256 signatures over it. Pure: the registry
 * side (the `sha256-<hex>.sig` manifest) lives in signatures.ts.
 *
 * `cosign.key` is an "ENCRYPTED SIGSTORE PRIVATE KEY": JSON with scrypt parameters and salt,
 * a NaCl secretbox nonce and the ciphertext of the PKCS#8 DER key (go-securesystemslib's
 * `encrypted` format). Node has scrypt but no secretbox: tweetnacl (audited, no dependencies)
 * supplies it. `cosign.pub` is a PEM SubjectPublicKeyInfo.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto'
import { scrypt, type ScryptOptions, scryptSync, sign as signBytes, verify as verifyBytes } from 'node:crypto'
import nacl from 'tweetnacl'
import { z } from 'zod'
import { InvalidInputError, UsageError } from './errors.ts'

function scryptAsync(password: string, salt: Buffer, length: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, length, options, (error, key) => (error ? reject(error) : resolve(key)))
  })
}

export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature'
export const SIMPLESIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json'

const PEM_TYPES = ['ENCRYPTED SIGSTORE PRIVATE KEY', 'ENCRYPTED COSIGN PRIVATE KEY']
// go-securesystemslib's "standard" strength; it refuses parameters other than its known sets.
const SCRYPT = { N: 65536, r: 8, p: 1 }

const envelope = z.object({
  kdf: z.object({
    name: z.literal('scrypt'),
    params: z.object({
      N: z.number().int().positive(),
      r: z.number().int().positive(),
      p: z.number().int().positive(),
    }),
    salt: z.string(),
  }),
  cipher: z.object({ name: z.literal('nacl/secretbox'), nonce: z.string() }),
  ciphertext: z.string(),
})

/** The exact payload cosign signs for `digest` of `repository` (`host/path`), byte for byte. */
export function signaturePayload(repository: string, digest: string): Buffer {
  const payload = {
    critical: {
      identity: { 'docker-reference': repository },
      image: { 'docker-manifest-digest': digest },
      type: 'cosign container image signature',
    },
    optional: null,
  }
  return Buffer.from(JSON.stringify(payload))
}

/** What a payload claims: the digest it was signed for (undefined when it is not a cosign payload). */
export function payloadDigest(payload: Buffer): string | undefined {
  try {
    const parsed = JSON.parse(payload.toString('utf8')) as {
      critical?: { image?: { 'docker-manifest-digest'?: unknown } }
    }
    const digest = parsed.critical?.image?.['docker-manifest-digest']
    return typeof digest === 'string' ? digest : undefined
  } catch {
    return undefined
  }
}

/** Base64 DER ECDSA over SHA-256 of `payload`, as the signature annotation carries it. */
export function signPayload(payload: Buffer, key: KeyObject): string {
  return signBytes('sha256', payload, key).toString('base64')
}

/** Whether `signature` (base64 DER) over `payload` verifies with `key`. */
export function verifyPayload(payload: Buffer, signature: string, key: KeyObject): boolean {
  try {
    return verifyBytes('sha256', payload, key, Buffer.from(signature, 'base64'))
  } catch {
    return false
  }
}

/** Read `cosign.pub` (PEM). */
export function readPublicKey(pem: string, name = 'the public key'): KeyObject {
  try {
    return createPublicKey(pem)
  } catch (error: unknown) {
    throw new InvalidInputError('InvalidKey', `${name} is not a PEM public key (cosign.pub)`, { cause: error })
  }
}

/** Decrypt a cosign private key (or read a plain PKCS#8 PEM one). */
export async function readPrivateKey(pem: string, password: string): Promise<KeyObject> {
  const block = /-----BEGIN ([A-Z ]+)-----\s*([\s\S]*?)\s*-----END \1-----/.exec(pem)
  if (block && PEM_TYPES.includes(block[1] ?? '')) return await decrypt(Buffer.from(block[2] ?? '', 'base64'), password)
  try {
    return createPrivateKey(pem)
  } catch (error: unknown) {
    throw new UsageError('InvalidKey', 'the key is neither a cosign private key nor a PEM private key', {
      cause: error,
    })
  }
}

async function decrypt(json: Buffer, password: string): Promise<KeyObject> {
  const parsed = envelope.safeParse(JSON.parse(json.toString('utf8')))
  if (!parsed.success) throw new UsageError('InvalidKey', 'the cosign private key is not in the format cosign writes')
  const { kdf, cipher, ciphertext } = parsed.data
  const { N, r, p } = kdf.params
  // cosign's scrypt (N=65536) costs ~270 ms of CPU: on libuv's thread pool, so whatever else runs (rendering, a
  // reconciler's other passes) goes on meanwhile.
  const secret = await scryptAsync(password, Buffer.from(kdf.salt, 'base64'), 32, {
    N,
    r,
    p,
    maxmem: 256 * N * r + 1024 * 1024,
  })
  const der = nacl.secretbox.open(
    Buffer.from(ciphertext, 'base64'),
    Buffer.from(cipher.nonce, 'base64'),
    new Uint8Array(secret),
  )
  if (!der)
    throw new UsageError('WrongPassword', 'cannot decrypt the private key: wrong password (BERTH_COSIGN_PASSWORD)')
  return createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' })
}

/** A new ECDSA P-256 key pair as cosign writes it: `cosign.key` encrypted with `password`, `cosign.pub`. */
export function generateKeyPair(password: string): { privateKey: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const der = privateKey.export({ format: 'der', type: 'pkcs8' })
  const salt = randomBytes(32)
  const nonce = randomBytes(24)
  const secret = scryptSync(password, salt, 32, { ...SCRYPT, maxmem: 256 * SCRYPT.N * SCRYPT.r + 1024 * 1024 })
  const sealed = nacl.secretbox(new Uint8Array(der), new Uint8Array(nonce), new Uint8Array(secret))
  const body = JSON.stringify({
    kdf: { name: 'scrypt', params: SCRYPT, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: Buffer.from(sealed).toString('base64'),
  })
  return {
    privateKey: pem('ENCRYPTED SIGSTORE PRIVATE KEY', Buffer.from(body)),
    publicKey: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  }
}

/** A short, stable name for a public key: `sha256:<first 16 hex>` of its DER, as shown in status. */
export function keyId(key: KeyObject): string {
  const der = key.export({ format: 'der', type: 'spki' })
  return `sha256:${createHash('sha256').update(der).digest('hex').slice(0, 16)}`
}

function pem(type: string, body: Buffer): string {
  const lines = body.toString('base64').match(/.{1,64}/g) ?? []
  return `-----BEGIN ${type}-----\n${lines.join('\n')}\n-----END ${type}-----\n`
}
