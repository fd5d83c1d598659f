/**
 * The two-person rule, enforced by the apiserver itself, on a ground of its own (berth install's admission policies
 * are cluster-wide): real users with client certificates pin and approve; the MutatingAdmissionPolicy stamps who
 * pinned, whatever the request said; the ValidatingAdmissionPolicy admits an approval only in its requester's name.
 */
import { join } from 'node:path'
import { execa } from 'execa'
import { beforeAll, describe, expect, it } from 'vitest'
import { APPROVAL_API_VERSION, APPROVAL_KIND } from '../api/approval.ts'
import { type Environment, environmentRef } from '../api/environment.ts'
import { APPROVE_RULES, OVERRIDE_RULES, PROMOTE_RULES } from '../install/manifests.ts'
import { reconcileEnvironment } from '../reconciler/pass/reconcile.ts'
import { configMap } from './support/config-repo.ts'
import { environment, eventsOf, publishApp } from './support/environments.ts'
import { eventually } from './support/eventually.ts'
import { ROOT, useGround } from './support/ground.ts'
import { namespacedUser, type TestUser } from './support/users.ts'

const g = useGround(import.meta.url, { node: false })
process.env.SOURCE_DATE_EPOCH = '1700000000'

describe('promotion policy: approvals (the two-person rule)', () => {
  let alice: TestUser
  let bob: TestUser
  const digests: Record<string, string> = {}
  const repository = (): string => `${g.ground.registries.plain.host}/${g.repository}/app`
  const berth = (args: string[], kubeconfig: string): Promise<{ stdout: string; stderr: string; exitCode?: number }> =>
    execa(process.execPath, [join(ROOT, 'bin/berth.js'), ...args, '-n', g.namespace, '--kubeconfig', kubeconfig], {
      reject: false,
    })
  const pass = async (): Promise<Environment> => {
    await reconcileEnvironment({ kube: g.kube(), cacheDir: join(g.scratch(), 'cache') }, { namespace: g.namespace, name: 'prod' })
    return (await g.kube().get<Environment>(environmentRef(g.namespace, 'prod'))) as Environment
  }
  const ready = (e: Environment): { status?: string; reason?: string; message?: string } =>
    e.status?.conditions?.find((c) => c.type === 'Ready') ?? {}
  const approval = (who: TestUser, version: string, digest: string): Record<string, unknown> => ({
    apiVersion: APPROVAL_API_VERSION,
    kind: APPROVAL_KIND,
    metadata: { name: `by-hand-${who.name.split('-')[0] ?? ''}-${version}`, namespace: g.namespace },
    spec: { environment: 'prod', version, digest, approver: who.name },
  })

  beforeAll(async () => {
    const installed = await execa(process.execPath, [join(ROOT, 'bin/berth.js'), 'install', '--apply', '--kubeconfig', g.ground.kubeconfig])
    expect(installed.exitCode).toBe(0)
    alice = await namespacedUser(g, 'alice', [...PROMOTE_RULES, ...APPROVE_RULES])
    bob = await namespacedUser(g, 'bob', [...APPROVE_RULES])
    digests['1.0.0'] = await publishApp(g.scratch(), repository(), '1.0.0', { cm: configMap('settings', { v: '1' }) })
    digests['1.1.0'] = await publishApp(g.scratch(), repository(), '1.1.0', { cm: configMap('settings', { v: '2' }) })
    const spec = { source: { repository: `oci://${repository()}`, plainHTTP: true }, version: '1.0.0', promotion: { approvals: { required: 1 } } }
    // The CRD and the policies take effect once the apiserver has read them: until then, a refusal or no stamp.
    await eventually(
      async () => {
        const applied = await g.kube().apply(environment(g.namespace, 'prod', spec)).catch(() => undefined)
        return applied?.metadata.annotations?.['berth.dev/promoted-by']
      },
      (by) => by === 'berth-admin',
      30_000,
      500,
    )
  }, 180_000)

  it('holds a new version until someone other than its promoter approves exactly its digest', async () => {
    const waiting = await pass()
    expect(ready(waiting)).toMatchObject({ status: 'False', reason: 'AwaitingApproval' })
    expect(ready(waiting).message).toContain(`1.0.0 (${digests['1.0.0']}) pinned by berth-admin awaits approval: 0 of 1`)
    const approved = await berth(['approve', 'prod', '--version', '1.0.0', '--reason', 'looks right'], alice.kubeconfig)
    expect(approved.stderr).toBe('')
    expect(approved.stdout).toContain(`approved by ${alice.name}`)
    expect((await pass()).status?.lastAppliedVersion).toBe('1.0.0')

    // Alice pins 1.1.0 with kubectl, claiming to be mallory: the apiserver records her.
    const patch = { metadata: { annotations: { 'berth.dev/promoted-by': 'mallory' } }, spec: { version: '1.1.0' } }
    await execa(g.ground.parts.kubectl, ['--kubeconfig', alice.kubeconfig, 'patch', 'environment', 'prod', '-n', g.namespace,
      '--type=merge', '-p', JSON.stringify(patch)])
    const pinned = await pass()
    expect(pinned.metadata.annotations?.['berth.dev/promoted-by']).toBe(alice.name)
    expect(ready(pinned).message).toContain(`1.1.0 (${digests['1.1.0']}) pinned by ${alice.name} awaits approval: 0 of 1`)
    expect(pinned.status?.lastAppliedVersion).toBe('1.0.0')

    // Her own approval: refused by berth approve, and one made by hand does not count.
    const self = await berth(['approve', 'prod', '--version', '1.1.0'], alice.kubeconfig)
    expect(self.exitCode).toBe(3)
    expect(self.stderr).toContain(`${alice.name} pinned ${g.namespace}/prod to 1.1.0: the two-person rule wants someone else's approval`)
    await alice.kube.create(approval(alice, '1.1.0', digests['1.1.0'] ?? '') as never)
    expect(ready(await pass()).message).toContain('0 of 1')

    // An approval in bob's name, made by alice: the apiserver itself refuses it.
    const forged = await alice.kube.create(approval(bob, '1.1.0', digests['1.1.0'] ?? '') as never).then(() => '', String)
    expect(forged).toContain(`an approval is given in one's own name: approver must be ${alice.name}`)

    // Bob's approval of another digest (1.0.0's bytes under 1.1.0) does not count.
    await bob.kube.create(approval(bob, '1.1.0', digests['1.0.0'] ?? '') as never)
    expect(ready(await pass()).message).toContain('0 of 1')

    const second = await berth(['approve', 'prod', '--version', '1.1.0'], bob.kubeconfig)
    expect(second.stderr).toBe('')
    const landed = await pass()
    expect(landed.status?.lastAppliedVersion).toBe('1.1.0')
    expect(landed.status?.history?.at(-1)).toMatchObject({ version: '1.1.0', by: alice.name, result: 'Succeeded' })
    const status = JSON.parse((await berth(['status', 'prod', '-o', 'json'], g.ground.kubeconfig)).stdout) as { applied: string }
    expect(status.applied).toBe('1.1.0')
  }, 180_000)

  it('an override lands past the policy for a berth-override holder, on record; anyone else is refused by the apiserver', async () => {
    const carol = await namespacedUser(g, 'carol', [...PROMOTE_RULES, ...OVERRIDE_RULES])
    // A version nobody approved.
    await publishApp(g.scratch(), repository(), '1.2.0', { cm: configMap('settings', { v: '3' }) })
    const refused = await berth(['promote', 'prod', '--to', '1.2.0', '--override', '--reason', 'hotfix'], alice.kubeconfig)
    expect(refused.exitCode).not.toBe(0)
    expect(refused.stderr).toContain(`${alice.name} may not override promotion policy: that takes the berth-override role`)
    expect((await g.kube().get<Environment>(environmentRef(g.namespace, 'prod')))?.spec).toMatchObject({ version: '1.1.0' })

    const overridden = await berth(['promote', 'prod', '--to', '1.2.0', '--override', '--reason', 'hotfix for incident 7'], carol.kubeconfig)
    expect(overridden.stderr).toBe('')
    const landed = await pass()
    expect(landed.status?.lastAppliedVersion).toBe('1.2.0')
    expect(landed.status?.history?.at(-1)).toMatchObject({ version: '1.2.0', by: `${carol.name} (override: hotfix for incident 7)` })
    const [event] = await eventsOf(g, 'prod', 'Overridden')
    expect(event?.message).toBe(`1.2.0 lands by override of ${carol.name}, past AwaitingApproval: hotfix for incident 7`)
  }, 120_000)
})
