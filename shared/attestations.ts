/**
 * Health attestations: an Environment's signed word that a digest ran healthy there (or, later, failed), in cosign's
 * attestation format so the real `cosign verify-attestation` checks them: a DSSE envelope around an in-toto Statement
 * whose predicate (type {@link HEALTH_PREDICATE}) names the environment, the version, the digest and the result,
 * attached under `sha256-<hex>.att` beside the artifact as `cosign attest` attaches it. Reading verifies each envelope
 * against trusted keys and keeps only statements about exactly the digest asked for.
 */
import type { KeyObject } from 'node:crypto'
import { z } from 'zod'
import { keyId, SIGNATURE_ANNOTATION } from './cosign.ts'
import { appendLayer, attachedLayers, attachedTag, readBlob } from './cosign-tags.ts'
import { DSSE_ENVELOPE, open, seal } from './dsse.ts'
import { InvalidInputError } from './errors.ts'
import type { OrasOptions } from './oras.ts'
import type { TrustedKey } from './signatures.ts'

export const HEALTH_PREDICATE = 'https://berth.dev/attestations/health/v1'
const IN_TOTO = 'application/vnd.in-toto+json'
const STATEMENT = 'https://in-toto.io/Statement/v1'
/** cosign v2 still writes the older Statement type; both mean the same here. */
const STATEMENTS = [STATEMENT, 'https://in-toto.io/Statement/v0.1']
/** The most attestations of one digest berth reads, and the largest envelope (they are about 1 KiB). */
const MAX_ATTESTATIONS = 100
const MAX_ENVELOPE_BYTES = 64 * 1024

export const healthPredicateSchema = z.object({
  cluster: z.string().min(1),
  namespace: z.string().min(1),
  environment: z.string().min(1),
  version: z.string(),
  digest: z.string(),
  result: z.enum(['healthy', 'failed']),
  readySince: z.string().describe('when the digest became Ready there (RFC 3339)'),
  attestedAt: z.string(),
  berthVersion: z.string(),
})
export type HealthPredicate = z.infer<typeof healthPredicateSchema>

const statementSchema = z.object({
  _type: z.string(),
  subject: z.array(z.object({ name: z.string().optional(), digest: z.record(z.string(), z.string()) })).max(16),
  predicateType: z.string(),
  predicate: z.unknown(),
})

/** `cluster/namespace/environment`: who attested, as `promotion.attested.environment` names it. */
export function identityOf(p: Pick<HealthPredicate, 'cluster' | 'namespace' | 'environment'>): string {
  return `${p.cluster}/${p.namespace}/${p.environment}`
}

/** Where cosign (and berth) keep the attestations of `digest`. */
export function attestationTag(repository: string, digest: string): string {
  return attachedTag(repository, digest, 'att')
}

/** Sign `predicate` about `digest` of `repository` with `key` and attach it; returns where. */
export async function attestHealth(
  repository: string,
  digest: string,
  predicate: HealthPredicate,
  key: KeyObject,
  access: OrasOptions,
): Promise<string> {
  const statement = {
    _type: STATEMENT,
    subject: [{ name: repository, digest: { sha256: digest.replace(/^sha256:/, '') } }],
    predicateType: HEALTH_PREDICATE,
    predicate,
  }
  const envelope = seal(IN_TOTO, Buffer.from(JSON.stringify(statement)), key)
  const reference = attestationTag(repository, digest)
  const before = await attachedLayers(reference, DSSE_ENVELOPE, access)
  // cosign marks an attestation layer with an empty signature annotation and its predicate type.
  const annotations = { [SIGNATURE_ANNOTATION]: '', predicateType: HEALTH_PREDICATE }
  await appendLayer(repository, reference, before, envelope, { mediaType: DSSE_ENVELOPE, annotations }, access)
  return reference
}

/** An attestation that verified with a trusted key and is about exactly the digest asked for. */
export type Attestation = { predicate: HealthPredicate; key: string; keyId: string }

/**
 * The health attestations of `digest`: those that verify with one of `keys` and state exactly this digest, and why
 * each other one was set aside (a bad or untrusted signature, another digest, a malformed statement).
 */
export async function healthAttestations(
  repository: string,
  digest: string,
  keys: readonly TrustedKey[],
  access: OrasOptions,
): Promise<{ verified: Attestation[]; refused: string[]; where: string }> {
  const { where, envelopes } = await healthEnvelopes(repository, digest, access)
  const verified: Attestation[] = []
  const refused: string[] = []
  for (const envelope of envelopes) {
    const judged = typeof envelope === 'string' ? { refused: envelope } : judge(envelope, digest, keys)
    if ('refused' in judged) refused.push(judged.refused)
    else if (judged.attestation) verified.push(judged.attestation)
  }
  return { verified, refused, where }
}

/** One attestation as `berth attestations` lists it: what it says, and the key that verified it or why none did. */
export type Listed = { predicate?: HealthPredicate; key?: string; keyId?: string; refused?: string }

/** Every health attestation of `digest`, verified against `keys` where it can be; unverified ones say why. */
export async function listAttestations(
  repository: string,
  digest: string,
  keys: readonly TrustedKey[],
  access: OrasOptions,
): Promise<{ where: string; listed: Listed[] }> {
  const { where, envelopes } = await healthEnvelopes(repository, digest, access)
  const listed = envelopes.map((envelope): Listed => {
    if (typeof envelope === 'string') return { refused: envelope }
    const judged = judge(envelope, digest, keys)
    if ('refused' in judged) {
      const statement = parseJson(unsealed(envelope)) as { predicate?: unknown } | undefined
      const claimed = healthPredicateSchema.safeParse(statement?.predicate)
      return { ...(claimed.success ? { predicate: claimed.data } : {}), refused: judged.refused }
    }
    return judged.attestation ? { ...judged.attestation } : { refused: 'another predicate type' }
  })
  return { where, listed }
}

/** The attestation envelopes of `digest` (health ones, or of no stated type), or why one was not read. */
async function healthEnvelopes(
  repository: string,
  digest: string,
  access: OrasOptions,
): Promise<{ where: string; envelopes: Array<Buffer | string> }> {
  const where = attestationTag(repository, digest)
  const layers = await attachedLayers(where, DSSE_ENVELOPE, access)
  if (layers.length > MAX_ATTESTATIONS) {
    throw new InvalidInputError('TooLarge', `${where} holds ${layers.length} attestations; berth reads at most ${MAX_ATTESTATIONS}`)
  }
  const envelopes: Array<Buffer | string> = []
  for (const layer of layers) {
    if (layer.annotations?.predicateType !== undefined && layer.annotations.predicateType !== HEALTH_PREDICATE) continue
    envelopes.push(
      layer.size > MAX_ENVELOPE_BYTES
        ? `${layer.digest} is ${layer.size} bytes, more than an attestation (${MAX_ENVELOPE_BYTES / 1024} KiB)`
        : await readBlob(`${repository}@${layer.digest}`, access),
    )
  }
  return { where, envelopes }
}

/** An envelope's payload, unverified: only to show what a refused attestation claims. */
function unsealed(envelope: Buffer): Buffer {
  const parsed = parseJson(envelope) as { payload?: unknown } | undefined
  return typeof parsed?.payload === 'string' ? Buffer.from(parsed.payload, 'base64') : Buffer.alloc(0)
}

/** One envelope: a verified attestation of `digest`, nothing (another predicate type), or why it is refused. */
function judge(
  bytes: Buffer,
  digest: string,
  keys: readonly TrustedKey[],
): { attestation?: Attestation } | { refused: string } {
  const opened = open(bytes, IN_TOTO, keys)
  if ('refused' in opened) return { refused: `bad or untrusted signature (${opened.refused})` }
  const statement = statementSchema.safeParse(parseJson(opened.body))
  if (!statement.success || !STATEMENTS.includes(statement.data._type))
    return { refused: 'signed, but not an in-toto Statement' }
  if (statement.data.predicateType !== HEALTH_PREDICATE) return {}
  const hex = digest.replace(/^sha256:/, '')
  const predicate = healthPredicateSchema.safeParse(statement.data.predicate)
  if (!predicate.success) return { refused: `signed, but its predicate is not ${HEALTH_PREDICATE}` }
  const about = statement.data.subject.map((s) => s.digest.sha256)
  // Both the subject and the predicate must name this digest: an attestation copied from another digest says nothing.
  if (!about.includes(hex) || predicate.data.digest !== digest) {
    const other = about.find((a) => a !== hex) ?? predicate.data.digest.replace(/^sha256:/, '')
    return { refused: `made for another digest (sha256:${other})` }
  }
  return { attestation: { predicate: predicate.data, key: opened.key.name, keyId: keyId(opened.key.key) } }
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'))
  } catch {
    return undefined
  }
}

/**
 * An identity's word on a digest: its newest attestation (by attestedAt). A later `failed` overrides an earlier
 * `healthy`, and a later `healthy` an earlier `failed`.
 */
export function newestFrom(attestations: readonly Attestation[], identity: string): Attestation | undefined {
  const at = (a: Attestation): number => Date.parse(a.predicate.attestedAt)
  return attestations
    .filter((a) => identityOf(a.predicate) === identity)
    .reduce<Attestation | undefined>((newest, a) => (!newest || at(a) > at(newest) ? a : newest), undefined)
}
