/**
 * Promotion policy on the real apiserver: windows hold a new version until they open (an injected clock, no waiting),
 * while the version running stays applied and drift-corrected; `berth freeze -A -l …` holds the new versions of
 * Environments in two namespaces, `berth unfreeze` lets them land.
 */
import { join } from 'node:path'
import { execa } from 'execa'
import { beforeAll, describe, expect, it } from 'vitest'
import { type Environment, environmentRef } from '../api/environment.ts'
import { reconcileEnvironment } from '../reconciler/pass/reconcile.ts'
import { configMap } from './support/config-repo.ts'
import { environment, eventsOf, installCrd, publishApp, testClock } from './support/environments.ts'
import { ROOT, useGround } from './support/ground.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'

describe('promotion policy: windows and freezes', () => {
  const repository = (): string => `${g.ground.registries.plain.host}/${g.repository}/app`
  const source = (): Record<string, unknown> => ({ repository: `oci://${repository()}`, plainHTTP: true })
  type Passed = { env: Environment; afterMs?: number }
  const pass = async (namespace: string, name: string, now: () => Date): Promise<Passed> => {
    const outcome = await reconcileEnvironment({ kube: g.kube(), cacheDir: join(g.scratch(), 'cache'), now }, { namespace, name })
    const env = (await g.kube().get<Environment>(environmentRef(namespace, name))) as Environment
    return { env, ...(outcome.next === 'requeue' ? { afterMs: outcome.afterMs } : {}) }
  }
  const ready = (e: Environment): { status?: string; reason?: string; message?: string } =>
    e.status?.conditions?.find((c) => c.type === 'Ready') ?? {}
  const berth = (args: string[]): Promise<{ stdout: string; stderr: string; exitCode?: number }> =>
    execa(process.execPath, [join(ROOT, 'bin/berth.js'), ...args, '--kubeconfig', g.ground.kubeconfig], { reject: false })

  beforeAll(async () => {
    await installCrd(g.kube())
    await publishApp(g.scratch(), repository(), '1.0.0', { cm: configMap('settings', { v: '1' }) })
    await publishApp(g.scratch(), repository(), '1.1.0', { cm: configMap('settings', { v: '2' }) })
  })

  it('a deny window holds a new version until it closes; what runs keeps running and is still corrected', async () => {
    // 06:00 UTC on a Thursday, inside a deny window open every day from midnight for 12 h.
    const clock = testClock()
    clock.later(Date.parse('2026-12-10T06:00:00Z') - Date.now())
    const windows = [{ kind: 'deny', schedule: '0 0 * * *', duration: '12h' }]
    const spec = (version: string): Record<string, unknown> => ({ source: source(), version, interval: '24h', promotion: { windows } })
    await g.kube().apply(environment(g.namespace, 'windowed', { ...spec('1.0.0'), promotion: undefined }))
    expect(ready((await pass(g.namespace, 'windowed', clock.now)).env).status).toBe('True')

    await g.kube().apply(environment(g.namespace, 'windowed', spec('1.1.0')))
    const held = await pass(g.namespace, 'windowed', clock.now)
    expect(ready(held.env)).toMatchObject({ status: 'False', reason: 'OutsideWindow' })
    expect(ready(held.env).message).toBe(
      'a new version waits: inside the deny window "0 0 * * *" for 12h; the next window opens 2026-12-10T12:00:00.000Z; '
      + 'still running 1.0.0',
    )
    // Back when the window closes (the test clock runs on from 06:00 as real time passes).
    expect(held.afterMs).toBeLessThanOrEqual(6 * 3600_000)
    expect(held.afterMs).toBeGreaterThan(6 * 3600_000 - 60_000)
    expect(held.env.status?.lastAppliedVersion).toBe('1.0.0')
    expect((await eventsOf(g, 'windowed', 'OutsideWindow')).length).toBe(1)
    // Drift on what runs is corrected while the new version waits.
    await g.kubectl(['patch', 'configmap', 'settings', '-n', g.namespace, '--type=merge', '-p', '{"data":{"v":"tampered"}}'])
    await pass(g.namespace, 'windowed', clock.now)
    expect(await g.kubectl(['get', 'configmap', 'settings', '-n', g.namespace, '-o', 'jsonpath={.data.v}'])).toBe('1')

    clock.later(6 * 3600_000)
    const landed = await pass(g.namespace, 'windowed', clock.now)
    expect(ready(landed.env).status).toBe('True')
    expect(landed.env.status?.lastAppliedVersion).toBe('1.1.0')
  })

  it('berth freeze -A -l holds new versions in two namespaces; unfreeze lets them land', async () => {
    const other = `${g.namespace}-other`
    await g.kube().apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: other } })
    const now = (): Date => new Date()
    for (const ns of [g.namespace, other]) {
      const env = environment(ns, 'frozen', { source: source(), version: '1.0.0', targetNamespace: `${ns}-apps` })
      await g.kube().apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `${ns}-apps` } })
      await g.kube().apply({ ...env, metadata: { ...env.metadata, labels: { team: `shop-${g.namespace}` } } })
      expect(ready((await pass(ns, 'frozen', now)).env).status).toBe('True')
    }
    const froze = await berth(['freeze', '-A', '-l', `team=shop-${g.namespace}`, '--reason', 'incident 42', '--until', '2h', '-o', 'json'])
    expect(froze.stderr).toBe('')
    const frozen = JSON.parse(froze.stdout) as Array<{ namespace: string; by: string; until: string }>
    expect(frozen.map((f) => f.namespace).sort()).toEqual([g.namespace, other].sort())
    expect(frozen[0]?.by).toBe('berth-admin')

    for (const ns of [g.namespace, other]) {
      await g.kube().mergePatch(environmentRef(ns, 'frozen'), { spec: { version: '1.1.0' } })
      const held = await pass(ns, 'frozen', now)
      expect(ready(held.env)).toMatchObject({ status: 'False', reason: 'Frozen' })
      expect(ready(held.env).message).toMatch(/^frozen by berth-admin at \S+: incident 42 \(until \S+\); .*still running 1\.0\.0$/)
    }
    const status = JSON.parse((await berth(['status', 'frozen', '-n', other, '-o', 'json'])).stdout) as { frozen: object }
    expect(status.frozen).toMatchObject({ by: 'berth-admin', reason: 'incident 42' })
    // History says the new version waits, frozen; Events say when the hold began.
    const history = (await g.kube().get<Environment>(environmentRef(other, 'frozen')))?.status?.history ?? []
    expect(history.map((h) => [h.version, h.result])).toEqual([['1.0.0', 'Succeeded'], ['1.1.0', 'Frozen']])
    const events = await execa(g.ground.parts.kubectl, ['--kubeconfig', g.ground.kubeconfig, 'get', 'events', '-n', other,
      '--field-selector', 'reason=Frozen', '-o', 'jsonpath={.items[*].message}'])
    expect(events.stdout).toContain('frozen by berth-admin')

    await berth(['unfreeze', '-A', '-l', `team=shop-${g.namespace}`])
    for (const ns of [g.namespace, other]) {
      const landed = await pass(ns, 'frozen', now)
      expect(landed.env.status?.lastAppliedVersion).toBe('1.1.0')
      expect(landed.env.status?.history?.at(-1)).toMatchObject({ version: '1.1.0', result: 'Succeeded' })
    }
  })
})
