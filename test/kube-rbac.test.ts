import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Kube, loadKubeConfig } from '../shared/kube.ts'
import { issueCert, makeCa } from './ground/certs.ts'
import { writeKubeconfig } from './ground/ground.ts'
import { useGround } from './support/ground.ts'
import { namespacedUser } from './support/users.ts'

const g = useGround(import.meta.url)

describe('RBAC is enforced for a user with a client certificate', () => {
  it('lets a user read ConfigMaps in its namespace and refuses everything else', async () => {
    const { name: user, kube: reader } = await namespacedUser(g, 'reader', [
      { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] },
    ])
    const readable = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'readable', namespace: g.namespace },
      data: { a: '1' },
    }
    await g.kube().apply(readable)

    expect(await reader.get(readable)).toMatchObject({ data: { a: '1' } })

    await expect(reader.apply({ ...readable, data: { a: 'changed' } })).rejects.toMatchObject({
      code: 403,
      reason: 'Forbidden',
      message: expect.stringContaining(`User "${user}" cannot patch resource "configmaps"`),
    })
    await expect(
      reader.get({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'any', namespace: g.namespace } }),
    ).rejects.toMatchObject({ code: 403 })
    await expect(
      reader.get({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'kube-system' } }),
    ).rejects.toMatchObject({ code: 403 })
    expect((await g.kube().get<typeof readable>(readable))?.data).toEqual({ a: '1' })
  })

  it('refuses a certificate signed by a CA the apiserver does not trust', async () => {
    const rogueDir = join(g.scratch(), 'rogue')
    await mkdir(rogueDir)
    const rogueCa = await makeCa(rogueDir)
    const cert = await issueCert(rogueCa, rogueDir, {
      name: 'admin',
      commonName: 'mallory',
      groups: ['system:masters'],
      usage: 'client',
    })
    const kubeconfig = join(rogueDir, 'kubeconfig')
    await writeKubeconfig(kubeconfig, {
      server: g.ground.apiserverUrl,
      ca: g.ground.ca.cert,
      client: cert,
      user: 'mallory',
      context: 'rogue',
    })

    const rogue = new Kube(loadKubeConfig({ kubeconfig }))
    await expect(
      rogue.get({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }),
    ).rejects.toMatchObject({ code: 401 })
  })
})
