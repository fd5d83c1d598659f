/**
 * `berth promote ENV --from <cluster>/<namespace>/<name>`: pin the highest version that identity attested healthy
 * (its newest word on that digest), read from the registry with the keys the gate trusts — the same evidence
 * `spec.promotion.attested` gates on, with no access to the upstream's cluster.
 */
import semver from 'semver'
import { type Environment, specSchema } from '../../api/environment.ts'
import { healthAttestations, newestFrom } from '../../shared/attestations.ts'
import { BerthError, UsageError } from '../../shared/errors.ts'
import type { Kube } from '../../shared/kube.ts'
import { listTags } from '../../shared/oras.ts'
import { readPublicKey } from '../../shared/cosign.ts'
import type { TrustedKey } from '../../shared/signatures.ts'
import { resolve } from '../source/resolve.ts'
import { openSource } from '../source/source.ts'
import { trustedKeys } from '../source/verify.ts'
import type { Pin } from './choose.ts'

/** The most versions, newest first, whose attestations are read before giving up. */
const LOOKED_AT = 50

/** `<cluster>/<namespace>/<name>`: an upstream anywhere, rather than an Environment of this namespace. */
export const isIdentity = (from: string): boolean => from.split('/').length === 3

/**
 * The highest version of `env`'s repository whose newest attestation by `identity` says healthy. Keys: `keys` (PEM
 * files' contents by name), else the Secret the Environment's `promotion.attested` names.
 */
export async function pinFromAttestations(
  kube: Kube,
  env: Environment,
  identity: string,
  options: { keys: ReadonlyArray<{ name: string; pem: string }>; registryConfig?: string | undefined },
): Promise<Pin> {
  const spec = specSchema.parse(env.spec)
  const { namespace, name } = env.metadata
  let keys: TrustedKey[]
  if (options.keys.length > 0) {
    keys = options.keys.map((k) => ({ name: k.name, key: readPublicKey(k.pem, k.name) }))
  } else if (spec.promotion?.attested) {
    const field = 'spec.promotion.attested.secretRef'
    keys = (await trustedKeys(kube, namespace, spec.promotion.attested.secretRef.name, field)).keys
  } else {
    throw new UsageError('Usage', `${namespace}/${name} has no spec.promotion.attested: give the trusted keys with --key`)
  }
  const extra = options.registryConfig ? { registryConfig: options.registryConfig } : {}
  const source = await openSource(kube, namespace, spec, extra)
  try {
    const versions = (await listTags(source.repository, source.access))
      .filter((t) => semver.valid(t) !== null)
      .sort(semver.rcompare)
      .slice(0, LOOKED_AT)
    for (const version of versions) {
      const { digest } = await resolve(source.repository, version, undefined, source.access)
      const found = await healthAttestations(source.repository, digest, keys, source.access)
      if (newestFrom(found.verified, identity)?.predicate.result !== 'healthy') continue
      const current = spec.digest ?? env.status?.lastAppliedDigest
      if (spec.version === version && current === digest) {
        throw new BerthError(
          'NothingToPromote',
          `${name} is already pinned to ${version}, the highest version ${identity} attested healthy; nothing changed`,
        )
      }
      return { version, digest }
    }
  } finally {
    await source.close()
  }
  throw new BerthError(
    'SourceNotReady',
    `none of the newest ${LOOKED_AT} versions of ${source.repository} is attested healthy by ${identity} with a `
    + 'trusted key; `berth attestations` shows who attested what',
  )
}
