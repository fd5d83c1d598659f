/**
 * Refuse a pin the registry does not have, or whose signature the reconciler would refuse,
 * before anything changes. When the registry cannot be asked from here (in-cluster only, other
 * credentials), say so and let the reconciler judge.
 */
import { type Environment, specSchema } from '../../api/environment.ts'
import { BerthError, InvalidInputError, messageOf } from '../../shared/errors.ts'
import type { Kube } from '../../shared/kube.ts'
import { verifyArtifact } from '../../shared/signatures.ts'
import { resolve } from '../source/resolve.ts'
import { openSource } from '../source/source.ts'
import { trustedKeys } from '../source/verify.ts'

export async function checkPublished(
  kube: Kube,
  env: Environment,
  pin: { version: string; digest?: string | undefined },
  registryConfig: string | undefined,
  warn: (line: string) => void,
): Promise<void> {
  const parsed = specSchema.safeParse(env.spec)
  if (!parsed.success) return
  const spec = parsed.data
  try {
    const source = await openSource(kube, env.metadata.namespace, spec, registryConfig ? { registryConfig } : {})
    try {
      const resolved = await resolve(source.repository, pin.version, pin.digest, source.access)
      // What the reconciler would refuse for want of a trusted signature is refused here, before the pin moves.
      if (spec.verify) {
        const { keys } = await trustedKeys(kube, env.metadata.namespace, spec.verify.secretRef.name)
        await verifyArtifact(source.repository, resolved.digest, keys, source.access)
      }
    } finally {
      await source.close()
    }
  } catch (error: unknown) {
    const reason = error instanceof BerthError ? error.reason : ''
    // A refused signature is refused input (exit 3); a version that is not there stays exit 1, as before.
    if (reason === 'VerificationFailed' || reason === 'VersionMismatch') {
      throw new InvalidInputError(reason, `${messageOf(error)}; nothing changed`)
    }
    if (reason === 'VersionNotFound' || reason === 'DigestMismatch') {
      throw new BerthError(reason, `${messageOf(error)}; nothing changed`)
    }
    warn(`could not check ${pin.version} (${messageOf(error)}); pinning anyway, the reconciler will report`)
  }
}
