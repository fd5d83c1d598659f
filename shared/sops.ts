/**
 * SOPS-encrypted YAML with age recipients, after SOPS' own file format (github.com/getsops/sops: aes/cipher.go,
 * sops.go, stores/yaml): each value is `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`, AES-256-GCM under one data key
 * with the value's path (`data:password:`) as additional data; the data key is age-encrypted to each recipient
 * (`sops.age[].enc`); `sops.mac` is the uppercase hex SHA-512 of every value in document order (only of the encrypted
 * ones with `mac_only_encrypted`), itself encrypted with `sops.lastmodified` as additional data.
 *
 * age is age-encryption's (by age's author), AES-GCM and SHA-512 Node's: no primitive is written here. Plaintext lives
 * in memory only, in what decryptSopsFile returns; nothing here logs or writes it.
 */
import { createDecipheriv, createHash } from 'node:crypto'
import { InvalidInputError } from './errors.ts'

// Only decryption reads YAML nodes: the `yaml` package is loaded then, not by the packager's checks (berth push).
type Yaml = typeof import('yaml')
type YamlNode = import('yaml').Node

const ENCRYPTED = /^ENC\[AES256_GCM,data:(.*),iv:(.+),tag:(.+),type:(.+)\]$/

/** SOPS initialises the MAC with these bytes under mac_only_encrypted, so the two kinds of MAC never match. */
const MAC_ONLY_ENCRYPTED_INIT = Buffer.from([
  0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
  0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
])

/**
 * The annotation the packager puts on a SOPS Secret it renders: where in the artifact the file it was encrypted in
 * lies, as SOPS wrote it (`.sops/<sha256>.yaml`). Its MAC covers that file, not what a kustomize overlay made of it.
 */
export const SOPS_SOURCE = 'berth.dev/sops-source'

/** The artifact's folder of SOPS files: a dot folder, so it is never an environment's. */
export const SOPS_FOLDER = '.sops'

/** Whether `value` is a SOPS-encrypted value (`ENC[AES256_GCM,…]`). */
export const isEncryptedValue = (value: unknown): boolean => typeof value === 'string' && ENCRYPTED.test(value)

type SopsMetadata = {
  age?: Array<{ recipient?: string; enc?: string }>
  mac?: string
  lastmodified?: string
  unencrypted_suffix?: string
  encrypted_suffix?: string
  unencrypted_regex?: string
  encrypted_regex?: string
  unencrypted_comment_regex?: string
  encrypted_comment_regex?: string
  mac_only_encrypted?: boolean
}

type Secretish = { kind?: string; apiVersion?: string; data?: unknown; stringData?: unknown; sops?: unknown }

/** A Secret that carries SOPS metadata: encrypted, or meant to be. */
export function isSopsSecret(object: object): boolean {
  const o = object as Secretish
  return o.kind === 'Secret' && o.apiVersion === 'v1' && typeof o.sops === 'object' && o.sops !== null
}

/**
 * What keeps a SOPS Secret from being safely encrypted, each naming the key: no age recipient, no MAC, a value
 * under data or stringData in clear (an encrypted_regex or unencrypted_suffix leaving it out). Empty: encrypted.
 */
export function sopsSecretProblems(object: object): string[] {
  const o = object as Secretish & { sops: SopsMetadata }
  const problems: string[] = []
  const age = Array.isArray(o.sops.age) ? o.sops.age : []
  if (!age.some((r) => typeof r.recipient === 'string' && typeof r.enc === 'string')) {
    problems.push('its sops block names no age recipient (sops --encrypt --age <recipient>)')
  }
  if (!isEncryptedValue(o.sops.mac)) problems.push('its sops block has no MAC')
  for (const field of ['data', 'stringData'] as const) {
    const values = o[field]
    if (values === undefined || values === null) continue
    if (typeof values !== 'object' || Array.isArray(values)) {
      problems.push(`${field} is not a map`)
      continue
    }
    for (const [key, value] of Object.entries(values)) {
      // SOPS leaves an empty value as it is: there is nothing to hide.
      if (value !== '' && !isEncryptedValue(value)) {
        problems.push(`${field}.${key} is in clear beside encrypted values (encrypted_regex or unencrypted_suffix?)`)
      }
    }
  }
  return problems
}

/**
 * The values under a Secret's data and stringData, as one string: the same encrypted Secret in its SOPS file and as
 * rendered (by kustomize, say) says the same, and a changed ciphertext says otherwise.
 */
export function sealedValues(object: object): string {
  const parts: string[] = []
  for (const field of ['data', 'stringData'] as const) {
    const values = (object as Secretish)[field]
    if (!values || typeof values !== 'object') continue
    for (const [key, value] of Object.entries(values)) parts.push(`${field}.${key}=${String(value)}`)
  }
  return parts.sort().join('\n')
}

/** A SOPS file could not be decrypted: the message names what, never a value. */
export class DecryptionError extends InvalidInputError {
  constructor(message: string) {
    super('DecryptionFailed', message)
  }
}

type Scalar = string | number | boolean | null

/**
 * Decrypt SOPS file `text` (YAML, one or more documents) with the age `identities` (`AGE-SECRET-KEY-1…`): the
 * documents in plaintext, without their `sops` block, once the MAC over them matched. Throws DecryptionError when no
 * identity opens the data key, a value does not decrypt (tampered, wrong key), or the MAC differs.
 */
export async function decryptSopsFile(text: string, identities: readonly string[]): Promise<unknown[]> {
  const yaml = await import('yaml')
  const { isMap } = yaml
  const documents = yaml.parseAllDocuments(text)
  if (!Array.isArray(documents)) throw new DecryptionError('it holds no YAML document')
  for (const doc of documents) {
    if (doc.errors.length > 0) throw new DecryptionError(`it is not valid YAML: ${doc.errors[0]?.message ?? ''}`)
  }
  const first = documents[0]?.contents
  const metadata = (isMap(first) ? (first.toJSON() as { sops?: SopsMetadata }).sops : undefined)
  if (!metadata) throw new DecryptionError('it has no sops block: it was not encrypted by SOPS')
  if (metadata.encrypted_comment_regex || metadata.unencrypted_comment_regex) {
    throw new DecryptionError('it was encrypted with a comment rule (encrypted_comment_regex), which berth does not read')
  }
  const key = await dataKey(metadata, identities)
  const hash = createHash('sha512')
  if (metadata.mac_only_encrypted) hash.update(MAC_ONLY_ENCRYPTED_INIT)
  const encrypted = encryptionRule(metadata)
  const out: unknown[] = []
  for (const doc of documents) {
    out.push(walk(yaml, doc.contents, [], true, (value, path) => {
      const inScope = encrypted(path)
      const plain = inScope ? decryptValue(value, key, `${path.join(':')}:`) : value
      if (plain !== null && (!metadata.mac_only_encrypted || inScope)) hash.update(macBytes(plain))
      return plain
    }))
  }
  const computed = hash.digest('hex').toUpperCase()
  const stored = decryptValue(metadata.mac ?? '', key, metadata.lastmodified ?? '')
  if (stored !== computed) {
    throw new DecryptionError('its MAC does not match its contents: a value or its place was changed after encryption')
  }
  return out
}

/** The data key, from the first age recipient one of `identities` can open. */
async function dataKey(metadata: SopsMetadata, identities: readonly string[]): Promise<Buffer> {
  const stanzas = (metadata.age ?? []).filter((r) => typeof r.enc === 'string')
  if (stanzas.length === 0) throw new DecryptionError('its sops block has no age recipient')
  if (identities.length === 0) throw new DecryptionError('no age identity was given to open it')
  const { Decrypter, armor } = await import('age-encryption')
  const decrypter = new Decrypter()
  for (const [i, identity] of identities.entries()) {
    try {
      decrypter.addIdentity(identity)
    } catch {
      // The library's own message quotes the key: never repeat it.
      throw new DecryptionError(`age identity ${i + 1} of ${identities.length} is not a valid AGE-SECRET-KEY-1… line`)
    }
  }
  for (const { enc } of stanzas) {
    try {
      const key = Buffer.from(await decrypter.decrypt(armor.decode(enc ?? ''), 'uint8array'))
      if (key.length === 32) return key
    } catch {
      // Not for these identities: try the next recipient.
    }
  }
  const recipients = stanzas.map((r) => r.recipient ?? '?').join(', ')
  throw new DecryptionError(`none of the age identities given opens it (it is encrypted to ${recipients})`)
}

/** Which paths SOPS encrypted, by the file's own rules (stored in its metadata), as sops.go shouldBeEncrypted. */
function encryptionRule(m: SopsMetadata): (path: readonly string[]) => boolean {
  return (path) => {
    let encrypted = true
    if (m.unencrypted_suffix && path.some((p) => p.endsWith(m.unencrypted_suffix ?? ''))) encrypted = false
    if (m.encrypted_suffix) encrypted = path.some((p) => p.endsWith(m.encrypted_suffix ?? ''))
    if (m.unencrypted_regex && path.some((p) => new RegExp(m.unencrypted_regex ?? '').test(p))) encrypted = false
    if (m.encrypted_regex) encrypted = path.some((p) => new RegExp(m.encrypted_regex ?? '').test(p))
    return encrypted
  }
}

/**
 * Walk a YAML node in document order as SOPS does: a map's keys extend the path, a list's items do not; at the top
 * level the `sops` block is not part of the tree. Leaves go through `leaf`; the result is plain JavaScript.
 */
function walk(
  yaml: Yaml,
  node: unknown,
  path: readonly string[],
  top: boolean,
  leaf: (value: Scalar, path: readonly string[]) => Scalar,
): unknown {
  const { isMap, isScalar, isSeq } = yaml
  if (isMap(node)) {
    const out: Record<string, unknown> = {}
    for (const pair of node.items) {
      const name = isScalar(pair.key) ? String(pair.key.value) : String(pair.key)
      if (top && name === 'sops') continue
      out[name] = walk(yaml, pair.value, [...path, name], false, leaf)
    }
    return out
  }
  if (isSeq(node)) return node.items.map((item) => walk(yaml, item, path, false, leaf))
  if (isScalar(node)) {
    const value = node.value
    if (value === null || value === undefined) return null
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return leaf(value, path)
    throw new DecryptionError(`${path.join('.')}: a value of a kind SOPS files do not hold`)
  }
  if (node === null || node === undefined) return null
  throw new DecryptionError(`${path.join('.')}: ${(node as YamlNode).constructor.name} is not a YAML value SOPS writes`)
}

/** One value decrypted (AES-256-GCM, its path as additional data) and typed as SOPS typed it. */
function decryptValue(value: Scalar, key: Buffer, additionalData: string): Scalar {
  // SOPS encrypts nothing for an empty value.
  if (value === '') return ''
  const match = typeof value === 'string' ? ENCRYPTED.exec(value) : null
  if (!match) throw new DecryptionError(`${additionalData.slice(0, -1) || 'its MAC'} should be encrypted but is not`)
  const [, data = '', iv = '', tag = '', type = ''] = match
  let plain: Buffer
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'), { authTagLength: 16 })
    decipher.setAAD(Buffer.from(additionalData, 'utf8'))
    decipher.setAuthTag(Buffer.from(tag, 'base64'))
    plain = Buffer.concat([decipher.update(Buffer.from(data, 'base64')), decipher.final()])
  } catch {
    const where = additionalData.endsWith(':') ? additionalData.slice(0, -1) : 'its MAC'
    throw new DecryptionError(`${where} does not decrypt: it was changed, or moved, after encryption`)
  }
  const text = plain.toString('utf8')
  switch (type) {
    case 'str':
    case 'bytes':
      return text
    case 'int':
    case 'float':
      return Number(text)
    case 'bool':
      return /^(1|t|T|TRUE|true|True)$/.test(text)
    default:
      throw new DecryptionError(`a value has the type ${type}, which berth does not read`)
  }
}

/** The bytes SOPS hashes for a value (sops.go ToBytes): booleans as True/False, numbers in full, no exponent. */
function macBytes(value: Exclude<Scalar, null>): Buffer {
  if (typeof value === 'boolean') return Buffer.from(value ? 'True' : 'False')
  if (typeof value === 'number') return Buffer.from(plainNumber(value))
  return Buffer.from(value, 'utf8')
}

/** `n` as Go's strconv.FormatFloat(n, 'f', -1, 64) writes it: the shortest digits that round-trip, no exponent. */
function plainNumber(n: number): string {
  const text = String(n)
  const match = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(text)
  if (!match) return text
  const [, sign = '', head = '', tail = '', exp = '0'] = match
  const digits = head + tail
  const point = 1 + Number(exp)
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`
  return `${sign}${digits.padEnd(point, '0')}`
}
