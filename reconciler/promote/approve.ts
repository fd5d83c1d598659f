/**
 * `berth approve ENV --version V`: an Approval of exactly that version and digest, in the approver's own name — the
 * apiserver admits no other name (install/policies.ts). Approving one's own pin is refused here, and would not count
 * in the reconciler anyway.
 */
import { createHash } from 'node:crypto'
import { APPROVAL_API_VERSION, APPROVAL_KIND, type Approval } from '../../api/approval.ts'
import { type Environment, specSchema } from '../../api/environment.ts'
import { PROMOTED_BY } from '../../api/well-known.ts'
import { InvalidInputError, RemoteError } from '../../shared/errors.ts'
import { type Kube, KubeApiError } from '../../shared/kube.ts'
import { resolve } from '../source/resolve.ts'
import { openSource } from '../source/source.ts'

export async function approve(
  kube: Kube,
  env: Environment,
  me: string,
  options: { version: string; reason?: string | undefined; registryConfig?: string | undefined },
): Promise<Approval> {
  const { namespace, name } = env.metadata
  const spec = specSchema.parse(env.spec)
  if (spec.version === options.version && env.metadata.annotations?.[PROMOTED_BY] === me) {
    throw new InvalidInputError(
      'SelfApproval',
      `${me} pinned ${namespace}/${name} to ${options.version}: the two-person rule wants someone else's approval; `
      + 'nothing changed',
    )
  }
  const digest = await digestOf(kube, env, options.version, options.registryConfig)
  const who = createHash('sha256').update(me).digest('hex').slice(0, 10)
  const approval: Approval = {
    apiVersion: APPROVAL_API_VERSION,
    kind: APPROVAL_KIND,
    metadata: {
      // One per person and version: approving again is "already approved", not a second vote.
      name: `${name}-${options.version.replace(/[^a-z0-9.-]/g, '-')}-${who}`,
      namespace,
    },
    spec: {
      environment: name,
      version: options.version,
      digest,
      approver: me,
      ...(options.reason ? { reason: options.reason } : {}),
    },
  }
  try {
    return await kube.create<Approval>(approval)
  } catch (error: unknown) {
    if (error instanceof KubeApiError && error.code === 409)
      throw new InvalidInputError('AlreadyApproved', `${me} already approved ${name} ${options.version}; nothing changed`)
    if (error instanceof KubeApiError && error.code === 403) {
      throw new RemoteError(
        'Forbidden',
        `${me} may not approve in ${namespace}: ask for the berth-approve role there (the apiserver said: ${error.detail})`,
        { cause: error },
      )
    }
    throw error
  }
}

/** The digest `version` names: what the pin resolved to, or the registry's answer. */
async function digestOf(kube: Kube, env: Environment, version: string, registryConfig?: string): Promise<string> {
  const { lastAttemptedVersion, lastAttemptedDigest } = env.status ?? {}
  if (lastAttemptedVersion === version && lastAttemptedDigest) return lastAttemptedDigest
  const spec = specSchema.parse(env.spec)
  const source = await openSource(kube, env.metadata.namespace, spec, registryConfig ? { registryConfig } : {})
  try {
    return (await resolve(source.repository, version, undefined, source.access)).digest
  } finally {
    await source.close()
  }
}
