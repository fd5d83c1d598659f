import { describe, expect, it } from 'vitest'
import {
  generateKeyPair,
  keyId,
  payloadDigest,
  readPrivateKey,
  readPublicKey,
  signaturePayload,
  signPayload,
  verifyPayload,
} from './cosign.ts'

const digest = `sha256:${'ab'.repeat(32)}`

describe('cosign keys and signatures', () => {
  it('writes the payload cosign signs, byte for byte', () => {
    expect(signaturePayload('r.example/app', digest).toString()).toBe(
      `{"critical":{"identity":{"docker-reference":"r.example/app"},"image":{"docker-manifest-digest":"${digest}"},`
      + '"type":"cosign container image signature"},"optional":null}',
    )
    expect(payloadDigest(signaturePayload('r.example/app', digest))).toBe(digest)
    expect(payloadDigest(Buffer.from('not json'))).toBeUndefined()
  })

  it('a generated key pair round-trips: the encrypted key decrypts with its password and signs what the public key verifies', async () => {
    const pair = generateKeyPair('s3cret')
    expect(pair.privateKey).toMatch(/^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n/)
    expect(
      JSON.parse(Buffer.from(pair.privateKey.split('\n').slice(1, -2).join(''), 'base64').toString()),
    ).toMatchObject({
      kdf: { name: 'scrypt', params: { N: 65536, r: 8, p: 1 } },
      cipher: { name: 'nacl/secretbox' },
    })
    const key = await readPrivateKey(pair.privateKey, 's3cret')
    const pub = readPublicKey(pair.publicKey)
    const payload = signaturePayload('r.example/app', digest)
    const signature = signPayload(payload, key)
    expect(verifyPayload(payload, signature, pub)).toBe(true)
    expect(verifyPayload(signaturePayload('r.example/app', `sha256:${'cd'.repeat(32)}`), signature, pub)).toBe(false)
    expect(verifyPayload(payload, signature, readPublicKey(generateKeyPair('x').publicKey))).toBe(false)
    expect(verifyPayload(payload, 'not base64 DER', pub)).toBe(false)
    expect(keyId(pub)).toMatch(/^sha256:[a-f0-9]{16}$/)
  })

  it('a wrong password or a key of another format is refused with a clear message', async () => {
    const pair = generateKeyPair('right')
    await expect(readPrivateKey(pair.privateKey, 'wrong')).rejects.toThrow(/wrong password \(BERTH_COSIGN_PASSWORD\)/)
    await expect(readPrivateKey('hello', '')).rejects.toThrow(/neither a cosign private key nor a PEM private key/)
    expect(() => readPublicKey('hello', 'keys/a.pub')).toThrow(/keys\/a\.pub is not a PEM public key/)
  })
})
