/**
 * What an operator installs to run the reconciler in a cluster: its Namespace, the
 * Environment CRD, a ServiceAccount with least-privilege RBAC, a metrics Service, a
 * Deployment and (with several replicas) a PodDisruptionBudget. `berth install` prints these objects; deploy/ holds the
 * default rendering.
 *
 * The rights come in three parts, so each can be read and reviewed on its own:
 * - `berth-reconciler` (ClusterRole): read and watch Environments, write their status and
 *   finalizer, record Events, read the registry Secrets Environments name. Nothing else.
 * - `berth-apply` (ClusterRole): the kinds berth may apply, prune and health-check — a
 *   default set of namespaced application kinds plus whatever `--allow` adds. Verbs are
 *   exactly what server-side apply, prune, health and drift need: get, list, watch, create, patch, delete.
 * - `berth-leader-election` (Role in berth's namespace): its one Lease.
 * With `watchNamespace` the first two are Roles with RoleBindings in that namespace only, and
 * the reconciler watches only there.
 *
 * Lockdown (`defaultServiceAccount`): no `berth-apply` and no Secrets at all. Every Environment
 * acts as its own ServiceAccount (`spec.serviceAccountName`, else the default one of its
 * namespace), so the reconciler holds only `impersonate` (and `get`) on ServiceAccounts.
 *
 * Always: `berth-view` and `berth-promote`, ClusterRoles people are bound to (aggregated into
 * Kubernetes' `view` and `edit`): developers publish, SREs promote.
 *
 * Every object but the CRD and those two carries `app.kubernetes.io/instance: <namespace>`, so
 * `berth install --apply` can find and delete what an earlier install of the same instance
 * created and this one no longer renders. Cluster-scoped names carry the namespace too when it
 * is not the default, so installs in two namespaces never overwrite each other's rights.
 */
import { writeYaml } from '../shared/yaml-writer.ts'
import { UsageError } from '../shared/errors.ts'
import { nameProblem, SUBDOMAIN_RULE } from '../shared/names.ts'
import { BERTH } from '../shared/package-info.ts'
import { DNS_LABEL } from '../shared/validation.ts'
import { environmentCrd } from '../api/crd.ts'
import { environmentSetCrd, SET_PLURAL } from '../api/environment-set.ts'
import { GROUP, PLURAL } from '../api/environment.ts'
import { INSTALL_LABELS, leaseName, RECONCILER_SELECTOR } from '../api/well-known.ts'
import { INSTALL_DEFAULTS } from './defaults.ts'
import { admissionObjects } from './policies.ts'
import { SHARD_LABEL } from '../api/well-known.ts'

export type InstallOptions = {
  /** Where the reconciler runs. */
  namespace: string
  image: string
  replicas: number
  /** Reconcile only the Environments of this namespace, with rights only there. */
  watchNamespace?: string | undefined
  /**
   * More kinds the reconciler may apply, as `resource.group` (kubectl's spelling: `deployments.apps`, `namespaces`).
   */
  allow: readonly string[]
  /** Lockdown: Environments without spec.serviceAccountName act as this ServiceAccount; no apply rights of its own. */
  defaultServiceAccount?: string | undefined
  /** One more Deployment per shard (`--shard KEY`), beside the one for Environments without a shard. */
  shards?: readonly string[] | undefined
  /** The cluster's name in notifications (`berth reconciler --cluster-name`). */
  clusterName?: string | undefined
  /** Ranges notification receivers may not resolve to (`berth reconciler --deny-receiver-cidr`). */
  denyReceiverCidrs?: readonly string[] | undefined
  /** The Prometheus metric checks ask when they name no Secret (`berth reconciler --prometheus-address`). */
  prometheusAddress?: string | undefined
}

export const DEFAULT_INSTALL: InstallOptions = { ...INSTALL_DEFAULTS, allow: [] }

type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }
type Obj = {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace?: string; labels?: Record<string, string> }
} & Record<string, unknown>

const NAME = 'berth-reconciler'
/**
 * V8's memory settings in the reconciler's container (NODE_OPTIONS). Node's default heap limit follows the machine's
 * memory, not the container's, and lets garbage pile up to it. 1,000 Environments × 10 objects keep about 30 MiB live;
 * these limits hold them with peak RSS under 250 MiB (`npm run bench -- scale` runs the reconciler with them) and leave
 * the rest of the container's memory limit to the oras processes a pass runs.
 */
export const NODE_MEMORY_OPTIONS = '--max-old-space-size=128 --max-semi-space-size=8'
const PORT = 8080
const CACHE = '/var/cache/berth'
/**
 * Server-side apply needs patch (and create when the object is new); prune needs delete; health and drift need get;
 * seeing drift as it happens needs list and watch (of berth's own objects: the watches are label-selected).
 */
export const APPLY_VERBS = ['get', 'list', 'watch', 'create', 'patch', 'delete']

/** Namespaced kinds an application's config usually holds. Cluster-scoped kinds, RBAC and Secrets only by `--allow`. */
export const DEFAULT_APPLY_RESOURCES: Readonly<Record<string, readonly string[]>> = {
  '': ['configmaps', 'services', 'serviceaccounts', 'persistentvolumeclaims'],
  'apps': ['deployments', 'statefulsets', 'daemonsets'],
  'batch': ['jobs', 'cronjobs'],
  'autoscaling': ['horizontalpodautoscalers'],
  'networking.k8s.io': ['ingresses', 'networkpolicies'],
  'policy': ['poddisruptionbudgets'],
}

export const RECONCILER_RULES: readonly Rule[] = [
  { apiGroups: [GROUP], resources: [PLURAL], verbs: ['get', 'list', 'watch', 'patch'] },
  { apiGroups: [GROUP], resources: [`${PLURAL}/status`], verbs: ['patch'] },
  // Only needed where OwnerReferencesPermissionEnforcement guards finalizers.
  { apiGroups: [GROUP], resources: [`${PLURAL}/finalizers`], verbs: ['update'] },
  // EnvironmentSets: their Environments, made and removed by the reconciler in the set's namespace.
  { apiGroups: [GROUP], resources: [SET_PLURAL], verbs: ['get', 'list', 'watch', 'patch'] },
  { apiGroups: [GROUP], resources: [`${SET_PLURAL}/status`], verbs: ['patch'] },
  { apiGroups: [GROUP], resources: [`${SET_PLURAL}/finalizers`], verbs: ['update'] },
  { apiGroups: [GROUP], resources: [PLURAL], verbs: ['create', 'delete'] },
  // spec.promotion.approvals: who approved what.
  { apiGroups: [GROUP], resources: ['approvals'], verbs: ['get', 'list'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create'] },
  // Acting as an Environment's ServiceAccount (spec.serviceAccountName); get tells a missing one apart.
  { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['get', 'impersonate'] },
  // Registry credentials named by spec.source.secretRef. RBAC cannot name them in advance; get alone cannot enumerate
  // them.
  { apiGroups: [''], resources: ['secrets'], verbs: ['get'] },
]

/** Lockdown: the reconciler reads no Secret; each Environment's ServiceAccount reads its own. */
export const LOCKDOWN_RULES: readonly Rule[] = RECONCILER_RULES.filter((r) => !r.resources.includes('secrets'))

/** For people: see Environments and EnvironmentSets (`berth status`, `kubectl get environments`). */
export const VIEW_RULES: readonly Rule[] = [
  { apiGroups: [GROUP], resources: [PLURAL, SET_PLURAL], verbs: ['get', 'list', 'watch'] },
]
/** For SREs: also change the pin, suspend and resume, and ask for a pass. */
export const PROMOTE_RULES: readonly Rule[] = [
  { apiGroups: [GROUP], resources: [PLURAL], verbs: ['get', 'list', 'watch', 'patch'] },
]

/** For approvers (the two-person rule): see Environments, give (and take back) approvals in their own name. */
export const APPROVE_RULES: readonly Rule[] = [
  { apiGroups: [GROUP], resources: [PLURAL], verbs: ['get', 'list', 'watch'] },
  { apiGroups: [GROUP], resources: ['approvals'], verbs: ['get', 'list', 'watch', 'create', 'delete'] },
]

/** For the emergency path: override windows, freezes and approvals (berth promote --override), on record. */
export const OVERRIDE_RULES: readonly Rule[] = [{ apiGroups: [GROUP], resources: [PLURAL], verbs: ['override'] }]

/** The label that tells one install's objects from another's. */
export const INSTANCE_LABEL = 'app.kubernetes.io/instance'

const labels = INSTALL_LABELS
const selector = RECONCILER_SELECTOR

/** The objects to apply, in an order that lands in one pass: Namespace and CRD first, workload last. */
export function installObjects(options: InstallOptions): Obj[] {
  const { namespace, watchNamespace } = checked(options)
  const instance = { ...labels, [INSTANCE_LABEL]: namespace }
  const meta = (name: string, ns?: string): Obj['metadata'] => ({
    name: ns ? name : clusterName(name, namespace),
    ...(ns ? { namespace: ns } : {}),
    labels: instance,
  })
  const subject = { kind: 'ServiceAccount', name: NAME, namespace }
  // Cluster-wide: ClusterRoles and ClusterRoleBindings. With watchNamespace: Roles and RoleBindings in that
  // namespace only, so installs for several namespaces never share (or overwrite) a cluster-scoped role.
  const scope = watchNamespace
    ? { role: 'Role', binding: 'RoleBinding' }
    : { role: 'ClusterRole', binding: 'ClusterRoleBinding' }
  const rbac = (name: string, rules: readonly Rule[]): Obj[] => [
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: scope.role, metadata: meta(name, watchNamespace), rules },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: scope.binding,
      metadata: meta(name, watchNamespace),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: scope.role, name: meta(name, watchNamespace).name },
      subjects: [subject],
    },
  ]
  const lockdown = options.defaultServiceAccount !== undefined
  return [
    // Pods here must meet the "restricted" Pod Security Standard; the Deployment below does.
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: namespace,
        labels: {
          ...labels,
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/warn': 'restricted',
        },
      },
    },
    environmentCrd(),
    environmentSetCrd(),
    ...(admissionObjects((base) => clusterName(base, namespace), watchNamespace) as Obj[]),
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(NAME, namespace) },
    ...rbac('berth-reconciler', lockdown ? LOCKDOWN_RULES : RECONCILER_RULES),
    ...(lockdown ? [] : rbac('berth-apply', applyRules(options.allow))),
    ...peopleRoles(),
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: meta('berth-leader-election', namespace),
      rules: [
        // create cannot be limited by name (the name is not known before the object exists).
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
        {
          apiGroups: ['coordination.k8s.io'],
          resources: ['leases'],
          resourceNames: [undefined, ...(options.shards ?? [])].map(leaseName),
          verbs: ['get', 'update'],
        },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: meta('berth-leader-election', namespace),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'berth-leader-election' },
      subjects: [subject],
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(`${NAME}-metrics`, namespace),
      spec: { selector, ports: [{ name: 'http-metrics', port: PORT, targetPort: 'http-metrics' }] },
    },
    deployment(options, namespace, watchNamespace, instance, undefined),
    ...(options.shards ?? []).map((shard) => deployment(options, namespace, watchNamespace, instance, shard)),
    // A node drain never takes every replica at once: a standby stays to take the Lease.
    ...(options.replicas > 1
      ? [
          {
            apiVersion: 'policy/v1',
            kind: 'PodDisruptionBudget',
            metadata: meta(NAME, namespace),
            spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
          },
        ]
      : []),
  ]
}

/**
 * `berth-view` and `berth-promote`: the same for every install (no instance label), so two
 * installs write identical objects. Aggregated into Kubernetes' own roles where the
 * controller-manager aggregates them; bind them directly with a RoleBinding otherwise.
 */
function peopleRoles(): Obj[] {
  const role = (name: string, rules: readonly Rule[], aggregate: readonly string[]): Obj => ({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: {
      name,
      labels: {
        ...labels,
        ...Object.fromEntries(aggregate.map((to) => [`rbac.authorization.k8s.io/aggregate-to-${to}`, 'true'])),
      },
    },
    rules,
  })
  return [
    role('berth-view', VIEW_RULES, ['view']),
    role('berth-promote', PROMOTE_RULES, ['edit', 'admin']),
    role('berth-approve', APPROVE_RULES, []),
    role('berth-override', OVERRIDE_RULES, []),
  ]
}

/** Cluster-scoped objects of an install outside the default namespace carry its name: installs never share one. */
function clusterName(name: string, namespace: string): string {
  return namespace === INSTALL_DEFAULTS.namespace ? name : `${name}-${namespace}`
}

/**
 * The reconciler's Deployment, or one shard's: `berth-reconciler-<shard>`, its pods labelled with
 * the shard so its selector is its own (the unsharded one's selector stays as it always was: a
 * Deployment's selector cannot change).
 */
function deployment(
  options: InstallOptions,
  namespace: string,
  watchNamespace: string | undefined,
  instance: Record<string, string>,
  shard: string | undefined,
): Obj {
  const labels = shard ? { ...instance, [SHARD_LABEL]: shard } : instance
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: shard ? `${NAME}-${shard}` : NAME, namespace, labels },
    spec: {
      replicas: options.replicas,
      selector: { matchLabels: shard ? { ...selector, [SHARD_LABEL]: shard } : selector },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: NAME,
          // A Linux image: never scheduled onto the Windows nodes of a mixed cluster.
          nodeSelector: { 'kubernetes.io/os': 'linux' },
          // A pass in flight finishes (or is abandoned cleanly) and the Lease is released before this runs out.
          terminationGracePeriodSeconds: 60,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 65532,
            runAsGroup: 65532,
            fsGroup: 65532,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          // Replicas on different nodes, so losing a node leaves a standby to take the Lease.
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                {
                  weight: 100,
                  podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selector } },
                },
              ],
            },
          },
          containers: [
            {
              name: 'reconciler',
              image: options.image,
              args: [
                'reconciler',
                '--leader-elect',
                `--metrics-address=0.0.0.0:${PORT}`,
                `--cache-dir=${CACHE}`,
                ...(watchNamespace ? [`--namespace=${watchNamespace}`] : []),
                ...(shard ? [`--shard=${shard}`] : []),
                ...(options.clusterName ? [`--cluster-name=${options.clusterName}`] : []),
                ...(options.denyReceiverCidrs ?? []).map((cidr) => `--deny-receiver-cidr=${cidr}`),
                ...(options.prometheusAddress ? [`--prometheus-address=${options.prometheusAddress}`] : []),
                ...(options.defaultServiceAccount
                  ? [`--default-service-account=${options.defaultServiceAccount}`]
                  : []),
              ],
              env: [
                // Written out as the apiserver stores it (apiVersion defaulted): a field stored otherwise than applied
                // makes SSA conflicts for co-owners.
                {
                  name: 'POD_NAMESPACE',
                  valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } },
                },
                { name: 'NODE_OPTIONS', value: NODE_MEMORY_OPTIONS },
                // The root filesystem is read-only: oras and Node's compile cache write under HOME and TMPDIR.
                { name: 'HOME', value: '/tmp' },
                { name: 'TMPDIR', value: '/tmp' },
              ],
              ports: [{ name: 'http-metrics', containerPort: PORT, protocol: 'TCP' }],
              livenessProbe: {
                httpGet: { path: '/healthz', port: 'http-metrics' },
                initialDelaySeconds: 5,
                periodSeconds: 10,
                failureThreshold: 3,
              },
              readinessProbe: {
                httpGet: { path: '/readyz', port: 'http-metrics' },
                periodSeconds: 5,
                failureThreshold: 3,
              },
              resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '512Mi' } },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [
                { name: 'tmp', mountPath: '/tmp' },
                { name: 'cache', mountPath: CACHE },
              ],
            },
          ],
          volumes: [
            { name: 'tmp', emptyDir: { sizeLimit: '256Mi' } },
            // Artifacts by digest: a restart re-fetches, which a digest check makes safe.
            { name: 'cache', emptyDir: { sizeLimit: '1Gi' } },
          ],
        },
      },
    },
  }
}

/** The objects as one YAML stream, as `berth install` prints them and deploy/berth.yaml holds them. */
export function installYaml(objects: readonly object[]): string {
  const header = `# berth ${BERTH.version}: what runs the reconciler in a cluster. Made by \`berth install\` (see --help for its options).\n`
  return header + objects.map((o) => writeYaml(o)).join('---\n')
}

/** `berth-apply`'s rules: the default set, plus each `--allow` entry under its group. */
export function applyRules(allow: readonly string[]): Rule[] {
  const byGroup = new Map<string, Set<string>>(Object.entries(DEFAULT_APPLY_RESOURCES).map(([g, r]) => [g, new Set(r)]))
  for (const entry of allow) {
    const { group, resource } = parseAllow(entry)
    byGroup.set(group, (byGroup.get(group) ?? new Set()).add(resource))
  }
  return [...byGroup].map(([group, resources]) => ({
    apiGroups: [group],
    resources: [...resources].sort(),
    verbs: APPLY_VERBS,
  }))
}

/** `deployments.apps` → {resource: deployments, group: apps}; `namespaces` → the core group. */
export function parseAllow(entry: string): { resource: string; group: string } {
  const dot = entry.indexOf('.')
  const resource = dot < 0 ? entry : entry.slice(0, dot)
  const group = dot < 0 ? '' : entry.slice(dot + 1)
  if (!DNS_LABEL.test(resource) || (dot >= 0 && !SUBDOMAIN_RULE.pattern.test(group))) {
    throw new UsageError(
      'InvalidAllow',
      `--allow ${JSON.stringify(entry)}: write a resource as kubectl does, plural and lower case, with its API group: deployments.apps, namespaces, featureflags.shop.example.com`,
    )
  }
  return { resource, group }
}

function checked(options: InstallOptions): { namespace: string; watchNamespace: string | undefined } {
  for (const [flag, value] of [
    ['--namespace', options.namespace],
    ['--watch-namespace', options.watchNamespace],
  ] as const) {
    if (value !== undefined && !DNS_LABEL.test(value))
      throw new UsageError(
        'InvalidNamespace',
        `${flag} ${JSON.stringify(value)}: must be a DNS label (lower case letters, digits and -)`,
      )
  }
  if (!Number.isInteger(options.replicas) || options.replicas < 1)
    throw new UsageError('InvalidReplicas', '--replicas must be a whole number of at least 1')
  if (!options.image.trim()) throw new UsageError('InvalidImage', '--image must name a container image')
  for (const shard of options.shards ?? []) {
    if (!DNS_LABEL.test(shard) || shard.length > 40) {
      throw new UsageError(
        'InvalidShard',
        `--shards: ${JSON.stringify(shard)} must be a DNS label of at most 40 characters`,
      )
    }
  }
  const sa = options.defaultServiceAccount
  if (sa !== undefined && nameProblem(sa, SUBDOMAIN_RULE)) {
    throw new UsageError('InvalidServiceAccount', `--default-service-account ${nameProblem(sa, SUBDOMAIN_RULE) ?? ''}`)
  }
  return { namespace: options.namespace, watchNamespace: options.watchNamespace }
}
