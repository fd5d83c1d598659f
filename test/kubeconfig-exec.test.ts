/**
 * Kubeconfigs berth does not read itself: an `exec` credential plugin (how EKS, GKE and AKS
 * authenticate) goes through client-node's KubeConfig, loaded only then. A real plugin process
 * hands out the ground admin's client certificate; berth must reach the real apiserver with it.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { load, dump } from 'js-yaml'
import { describe, expect, it } from 'vitest'
import { Kube, loadKubeConfig } from '../shared/kube.ts'
import { useGround } from './support/ground.ts'

const g = useGround(import.meta.url)

type Config = { users: Array<{ name: string; user: Record<string, unknown> }> }

describe('a kubeconfig whose user is an exec credential plugin', () => {
  it('reaches the apiserver with what the plugin hands out, and fails clearly when the plugin fails', async () => {
    const config = load(await readFile(g.ground.kubeconfig, 'utf8')) as Config
    const user = config.users[0]?.user ?? {}
    const credential = {
      apiVersion: 'client.authentication.k8s.io/v1',
      kind: 'ExecCredential',
      status: {
        clientCertificateData: Buffer.from(String(user['client-certificate-data']), 'base64').toString('utf8'),
        clientKeyData: Buffer.from(String(user['client-key-data']), 'base64').toString('utf8'),
      },
    }
    const plugin = join(g.scratch(), 'plugin.mjs')
    const marker = join(g.scratch(), 'plugin-ran')
    await writeFile(
      plugin,
      `import { writeFileSync } from 'node:fs'\nwriteFileSync(${JSON.stringify(marker)}, 'yes')\n`
      + `if (process.env.FAIL) { console.error('no credentials'); process.exit(1) }\n`
      + `process.stdout.write(${JSON.stringify(JSON.stringify(credential))})\n`,
    )
    const exec = (env: Array<{ name: string; value: string }>): Record<string, unknown> => ({
      exec: {
        apiVersion: 'client.authentication.k8s.io/v1',
        command: process.execPath,
        args: [plugin],
        env,
        interactiveMode: 'Never',
      },
    })
    const write = async (file: string, env: Array<{ name: string; value: string }>): Promise<string> => {
      const path = join(g.scratch(), file)
      await writeFile(path, dump({ ...config, users: [{ name: config.users[0]?.name, user: exec(env) }] }))
      return path
    }

    const kube = new Kube(loadKubeConfig({ kubeconfig: await write('exec', []) }))
    const ns = await kube.get<{ metadata: { name: string } }>({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: g.namespace },
    })
    expect(ns?.metadata.name).toBe(g.namespace)
    expect(await readFile(marker, 'utf8')).toBe('yes')

    const failing = new Kube(loadKubeConfig({ kubeconfig: await write('failing', [{ name: 'FAIL', value: '1' }]) }))
    await expect(
      failing.get({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: g.namespace } }),
    ).rejects.toThrow(/credential plugin \(exec or auth-provider of context ".*"\) failed: no credentials/)
  })
})
