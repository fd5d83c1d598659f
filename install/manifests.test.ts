import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { UsageError } from '../shared/errors.ts'
import { applyRules, DEFAULT_INSTALL, installObjects, installYaml, parseAllow } from './manifests.ts'

type Obj = {
  kind: string
  metadata: { name: string; namespace?: string }
  rules?: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }>
  spec?: unknown
}
const objects = (options = {}): Obj[] => installObjects({ ...DEFAULT_INSTALL, ...options })
const find = (all: Obj[], kind: string, name?: string): Obj => {
  const found = all.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name))
  if (!found) throw new Error(`no ${kind} ${name ?? ''}`)
  return found
}
type Container = {
  args: string[]
  securityContext: Record<string, unknown>
  livenessProbe: unknown
  readinessProbe: unknown
  resources: { requests?: unknown }
}
const container = (all: Obj[]): Container =>
  (find(all, 'Deployment').spec as { template: { spec: { containers: Container[] } } }).template.spec
    .containers[0] as Container

describe('install manifests', () => {
  it('deploy/berth.yaml is exactly what `berth install` prints with its defaults (run `npm run deploy:render` after changing them)', () => {
    expect(readFileSync(new URL('../deploy/berth.yaml', import.meta.url), 'utf8')).toBe(installYaml(objects()))
  })

  it('grants no wildcard and no write verb beyond what apply, prune and status need', () => {
    const rules = objects().flatMap((o) => o.rules ?? [])
    expect(rules.flatMap((r) => [...r.apiGroups, ...r.resources, ...r.verbs])).not.toContain('*')
    const verbs = new Set(rules.flatMap((r) => r.verbs))
    // 'override' is no Kubernetes verb: berth's admission policy asks for it (the berth-override role) on an override.
    expect([...verbs].sort()).toEqual(['create', 'delete', 'get', 'impersonate', 'list', 'override', 'patch', 'update', 'watch'])
    // Impersonation reaches ServiceAccounts only (spec.serviceAccountName), never users or groups.
    expect(rules.filter((r) => r.verbs.includes('impersonate'))).toEqual([
      { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['get', 'impersonate'] },
    ])
    const secrets = rules.filter((r) => r.resources.includes('secrets'))
    expect(secrets).toEqual([{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }])
    expect(
      rules.some((r) =>
        r.resources.some((res) =>
          [
            'roles',
            'clusterroles',
            'rolebindings',
            'clusterrolebindings',
            'namespaces',
            'customresourcedefinitions',
          ].includes(res),
        ),
      ),
    ).toBe(false)
  })

  it('grants cluster-wide by default, and only inside the watched namespace (Roles, nothing cluster-scoped) with --watch-namespace', () => {
    expect(
      objects()
        .filter((o) => o.kind === 'ClusterRoleBinding')
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(['berth-apply', 'berth-reconciler'])
    const scoped = objects({ watchNamespace: 'team-a' })
    // Only the roles people are bound to are cluster-scoped, and they bind nobody.
    expect(scoped.filter((o) => o.kind.startsWith('Cluster')).map((o) => `${o.kind} ${o.metadata.name}`)).toEqual([
      'ClusterRole berth-view',
      'ClusterRole berth-promote',
      'ClusterRole berth-approve',
      'ClusterRole berth-override',
    ])
    for (const kind of ['Role', 'RoleBinding'])
      expect(
        scoped
          .filter((o) => o.kind === kind && o.metadata.namespace === 'team-a')
          .map((o) => o.metadata.name)
          .sort(),
      ).toEqual(['berth-apply', 'berth-reconciler'])
    expect(container(scoped).args).toContain('--namespace=team-a')
    expect(container(objects()).args.some((a) => a.startsWith('--namespace'))).toBe(false)
  })

  it('lockdown (--default-service-account): no apply rights, no Secrets; only impersonation of ServiceAccounts', () => {
    const locked = objects({ defaultServiceAccount: 'deployer' })
    expect(locked.some((o) => o.metadata.name.startsWith('berth-apply'))).toBe(false)
    const rules = find(locked, 'ClusterRole', 'berth-reconciler').rules ?? []
    expect(rules.flatMap((r) => r.resources).sort()).toEqual([
      'approvals',
      'environments',
      // create and delete: the Environments an EnvironmentSet makes, in its own namespace.
      'environments',
      'environments/finalizers',
      'environments/status',
      'environmentsets',
      'environmentsets/finalizers',
      'environmentsets/status',
      'events',
      'serviceaccounts',
    ])
    expect(container(locked).args).toContain('--default-service-account=deployer')
    expect(() => objects({ defaultServiceAccount: 'Deployer' })).toThrow(
      /--default-service-account "Deployer" is not valid/,
    )
  })

  it('renders berth-view and berth-promote for people: see Environments, or also change them; aggregated into view and edit', () => {
    const view = find(objects(), 'ClusterRole', 'berth-view') as Obj & { metadata: { labels: Record<string, string> } }
    const promote = find(objects(), 'ClusterRole', 'berth-promote') as Obj & {
      metadata: { labels: Record<string, string> }
    }
    expect(view.rules).toEqual([
      { apiGroups: ['berth.dev'], resources: ['environments', 'environmentsets'], verbs: ['get', 'list', 'watch'] },
    ])
    expect(promote.rules?.[0]?.verbs).toEqual(['get', 'list', 'watch', 'patch'])
    expect(view.metadata.labels['rbac.authorization.k8s.io/aggregate-to-view']).toBe('true')
    expect(promote.metadata.labels['rbac.authorization.k8s.io/aggregate-to-edit']).toBe('true')
  })

  it('names cluster-scoped objects after the install namespace unless it is the default, and labels the instance', () => {
    const ops = objects({ namespace: 'ops' }) as Array<Obj & { metadata: { labels?: Record<string, string> } }>
    expect(
      ops
        .filter((o) => o.kind === 'ClusterRoleBinding')
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(['berth-apply-ops', 'berth-reconciler-ops'])
    const deployment = ops.find((o) => o.kind === 'Deployment')
    expect(deployment?.metadata.labels?.['app.kubernetes.io/instance']).toBe('ops')
  })

  it('--shards: one more Deployment per shard, each with its own selector, --shard and Lease', () => {
    const sharded = objects({ shards: ['a', 'b'] }) as Array<Obj & { spec?: { selector?: { matchLabels: object } } }>
    const deployments = sharded.filter((o) => o.kind === 'Deployment')
    expect(deployments.map((d) => d.metadata.name)).toEqual([
      'berth-reconciler',
      'berth-reconciler-a',
      'berth-reconciler-b',
    ])
    expect(deployments[1]?.spec?.selector?.matchLabels).toMatchObject({ 'berth.dev/shard': 'a' })
    expect(container([deployments[2] as Obj]).args).toContain('--shard=b')
    const lease = find(sharded, 'Role', 'berth-leader-election').rules?.find((r) => 'resourceNames' in r)
    expect((lease as { resourceNames?: string[] } | undefined)?.resourceNames).toEqual([
      'berth-reconciler',
      'berth-reconciler-a',
      'berth-reconciler-b',
    ])
    expect(() => objects({ shards: ['A'] })).toThrow(/--shards: "A" must be a DNS label/)
  })

  it('runs non-root on a read-only root filesystem with probes, requests and leader election', () => {
    const c = container(objects())
    expect(c.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    })
    expect(c.livenessProbe).toMatchObject({ httpGet: { path: '/healthz' } })
    expect(c.readinessProbe).toMatchObject({ httpGet: { path: '/readyz' } })
    expect(c.resources.requests).toBeDefined()
    expect(c.args).toContain('--leader-elect')
    expect(find(objects({ namespace: 'ops' }), 'Deployment').metadata.namespace).toBe('ops')
    expect(find(objects(), 'PodDisruptionBudget').spec).toMatchObject({ maxUnavailable: 1 })
    expect(objects({ replicas: 1 }).some((o) => o.kind === 'PodDisruptionBudget')).toBe(false)
  })

  it('adds --allow kinds under their API group', () => {
    const rules = applyRules([
      'namespaces',
      'customresourcedefinitions.apiextensions.k8s.io',
      'featureflags.shop.example.com',
      'deployments.apps',
    ])
    expect(rules.find((r) => r.apiGroups[0] === '')?.resources).toContain('namespaces')
    expect(rules.find((r) => r.apiGroups[0] === 'apiextensions.k8s.io')?.resources).toEqual([
      'customresourcedefinitions',
    ])
    expect(rules.find((r) => r.apiGroups[0] === 'shop.example.com')?.resources).toEqual(['featureflags'])
    expect(rules.find((r) => r.apiGroups[0] === 'apps')?.resources).toEqual([
      'daemonsets',
      'deployments',
      'statefulsets',
    ])
  })

  it('refuses what RBAC would not mean', () => {
    expect(parseAllow('roles.rbac.authorization.k8s.io')).toEqual({
      resource: 'roles',
      group: 'rbac.authorization.k8s.io',
    })
    for (const bad of ['Deployment', '*', 'deployments.', '', 'a/b'])
      expect(() => parseAllow(bad), bad).toThrow(UsageError)
    expect(() => objects({ namespace: 'Berth' })).toThrow(/--namespace "Berth": must be a DNS label/)
    expect(() => objects({ replicas: 0 })).toThrow(/--replicas/)
  })
})
