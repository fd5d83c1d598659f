/**
 * A real user of the test apiserver: a client certificate from the ground's CA, bound to a Role in the file's
 * namespace.
 */
import { join } from 'node:path'
import { Kube, loadKubeConfig } from '../../shared/kube.ts'
import { issueCert } from '../ground/certs.ts'
import { writeKubeconfig } from '../ground/ground.ts'
import type { FileGround } from './ground.ts'

export type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] }

export type TestUser = { name: string; kubeconfig: string; kube: Kube; grant: (rules: Rule[]) => Promise<void> }

/** A person with a client certificate from the ground's CA (`<name>-<namespace>`), and a kubeconfig for them. */
async function certificateUser(g: FileGround, name: string): Promise<{ user: string; kubeconfig: string }> {
  const user = `${name}-${g.namespace}`
  const cert = await issueCert(g.ground.ca, g.scratch(), { name, commonName: user, usage: 'client' })
  const kubeconfig = join(g.scratch(), `${name}.kubeconfig`)
  await writeKubeconfig(kubeconfig, {
    server: g.ground.apiserverUrl,
    ca: g.ground.ca.cert,
    client: cert,
    user,
    context: name,
  })
  return { user, kubeconfig }
}

/** A person bound to ClusterRole `role` in `namespace` only (a RoleBinding); returns their kubeconfig. */
export async function userBoundTo(g: FileGround, name: string, role: string, namespace: string): Promise<string> {
  const { user, kubeconfig } = await certificateUser(g, name)
  await g.kube().apply({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name, namespace },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
  })
  return kubeconfig
}

/** Create user `name` allowed exactly `rules` in the file's namespace; `grant` replaces the rules. */
export async function namespacedUser(g: FileGround, name: string, rules: Rule[]): Promise<TestUser> {
  const { user, kubeconfig } = await certificateUser(g, name)
  const grant = async (granted: Rule[]): Promise<void> => {
    await g
      .kube()
      .apply({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name, namespace: g.namespace },
        rules: granted,
      })
  }
  await grant(rules)
  await g.kube().apply({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name, namespace: g.namespace },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
  })
  return { name: user, kubeconfig, kube: new Kube(loadKubeConfig({ kubeconfig })), grant }
}
