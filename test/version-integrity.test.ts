/**
 * A version is its bytes, against someone who can write to the registry but holds no signing
 * key: an older release re-tagged as a newer version is refused (VersionMismatch), and a
 * version's tag moved onto other bytes after it was applied is refused (TagMoved) until it is
 * moved back or the new digest is pinned deliberately — with signatures off and on (every
 * artifact here validly signed, so the signature alone would let each one through).
 */
import { execa } from 'execa'
import { beforeAll, describe, expect, it } from 'vitest'
import type { Environment } from '../api/environment.ts'
import { generateKeyPair, readPrivateKey } from '../shared/cosign.ts'
import { signArtifact } from '../shared/signatures.ts'
import { configMap } from './support/config-repo.ts'
import { applyEnvironment, eventsOf, installCrd, passes, publishApp, type RecordedEvent } from './support/environments.ts'
import { useGround } from './support/ground.ts'

const g = useGround(import.meta.url)
process.env.SOURCE_DATE_EPOCH = '1700000000'
const access = { plainHttp: true }

describe.each([
  ['unsigned', false],
  ['signed, spec.verify on', true],
])('a version means one set of bytes (%s)', (label, signed) => {
  const key = generateKeyPair('pw')
  const { run, ready } = passes(g)
  const suffix = signed ? 'signed' : 'plain'
  let repository = ''
  const d: Record<string, string> = {}
  const name = (n: string): string => `${n}-${suffix}`
  const cm = async (object: string): Promise<string | undefined> =>
    (
      await g.kube().get<{ data?: Record<string, string> }>({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: object, namespace: g.namespace },
      })
    )?.data?.v
  /** Point `tag` at `digest`, as anyone with push rights can. */
  const retag = async (digest: string, tag: string): Promise<void> => {
    await execa(g.ground.parts.oras, ['tag', '--plain-http', `${repository}@${digest}`, tag])
  }
  const publish = async (repo: string, version: string, object: string, v: string): Promise<string> => {
    const digest = await publishApp(g.scratch(), repo, version, { cm: configMap(object, { v }) })
    if (signed) await signArtifact(repository, digest, await readPrivateKey(key.privateKey, 'pw'), access)
    return digest
  }
  const pin = (env: string, spec: Record<string, unknown>): Promise<void> =>
    applyEnvironment(g, name(env), repository, {
      ...spec,
      ...(signed ? { verify: { provider: 'cosign', secretRef: { name: 'keys' } } } : {}),
    })
  const events = (env: string): Promise<RecordedEvent[]> => eventsOf(g, name(env))

  beforeAll(async () => {
    await installCrd(g.kube())
    repository = `${g.ground.registries.plain.host}/${g.repository}/${suffix}`
    await g.kube().apply({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'keys', namespace: g.namespace },
      stringData: { 'team.pub': key.publicKey },
    })
    d['1.0.0'] = await publish(repository, '1.0.0', name('down'), '1')
    d['2.0.0'] = await publish(repository, '2.0.0', name('moved'), '2')
    // Other bytes that also say they are 2.0.0 (a build from another branch, pushed elsewhere), copied in later.
    d.other = await publishApp(g.scratch(), `${repository}-elsewhere`, '2.0.0', { cm: configMap(name('moved'), { v: 'X' }) })
    await execa(g.ground.parts.oras, ['cp', '--from-plain-http', '--to-plain-http', `${repository}-elsewhere@${d.other}`, `${repository}:scratch`])
    if (signed) await signArtifact(repository, d.other, await readPrivateKey(key.privateKey, 'pw'), access)
  })

  it('an older release re-tagged as a newer version is refused: VersionMismatch, nothing applied', async () => {
    await pin('down', { version: '1.0.0' })
    expect(ready((await run(name('down'))).env)?.status).toBe('True')
    await retag(d['1.0.0'] ?? '', '9.0.0')
    await pin('down', { version: '9.0.0' })
    const { env } = await run(name('down'))
    expect(ready(env)).toMatchObject({ status: 'False', reason: 'VersionMismatch' })
    expect(ready(env)?.message).toContain(`which is version 1.0.0 by its own annotation, not 9.0.0`)
    expect(ready(env)?.message).toContain(d['1.0.0'])
    expect(env.status?.lastAppliedVersion).toBe('1.0.0')
    expect(await cm(name('down'))).toBe('1')
  })

  it('the running version\'s tag moved onto other bytes: TagMoved, a Warning, what runs stays; moved back: fine again', async () => {
    await pin('moved', { version: '2.0.0' })
    expect(ready((await run(name('moved'))).env)?.status).toBe('True')
    await retag(d.other ?? '', '2.0.0')
    const { env, outcome } = await run(name('moved'))
    expect(ready(env)).toMatchObject({ status: 'False', reason: 'TagMoved' })
    const message = ready(env)?.message ?? ''
    expect(message).toContain(`now points at ${d.other ?? ''}, but 2.0.0 was applied here as ${d['2.0.0'] ?? ''}`)
    expect(message).toContain(`spec.digest: ${d.other ?? ''}`)
    expect(env.status?.lastAppliedDigest).toBe(d['2.0.0'])
    expect(await cm(name('moved'))).toBe('2')
    expect(await events('moved')).toContainEqual(expect.objectContaining({ type: 'Warning', reason: 'TagMoved' }))
    // Looked at again at the interval: the tag may be put back.
    expect(outcome).toMatchObject({ next: 'requeue' })

    await retag(d['2.0.0'] ?? '', '2.0.0')
    const back = (await run(name('moved'))).env
    expect(ready(back)).toMatchObject({ status: 'True' })
    expect(back.status?.lastAppliedDigest).toBe(d['2.0.0'])
  })

  it('a range that lands on a moved tag is refused the same way', async () => {
    // Its objects in a namespace of its own: one object, one owner.
    const targetNamespace = `${g.namespace}-${suffix}`
    await g.kube().apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: targetNamespace } })
    await pin('range', { version: '>=2.0.0 <3', targetNamespace })
    expect((await run(name('range'))).env.status?.lastAppliedDigest).toBe(d['2.0.0'])
    await retag(d.other ?? '', '2.0.0')
    const { env } = await run(name('range'))
    expect(ready(env)).toMatchObject({ status: 'False', reason: 'TagMoved' })
    expect(env.status?.lastAppliedDigest).toBe(d['2.0.0'])
    await retag(d['2.0.0'] ?? '', '2.0.0')
  })

  it('pinning the new digest deliberately accepts it', async () => {
    await retag(d.other ?? '', '2.0.0')
    await pin('moved', { version: '2.0.0', digest: d.other })
    const env: Environment = (await run(name('moved'))).env
    expect(ready(env)).toMatchObject({ status: 'True' })
    expect(env.status?.lastAppliedDigest).toBe(d.other)
    expect(await cm(name('moved'))).toBe('X')
    await retag(d['2.0.0'] ?? '', '2.0.0')
  })
})
