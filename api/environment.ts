/**
 * The `Environment` API (berth.dev/v1alpha1): one zod schema is the source of truth for the
 * reconciler's validation and for the CRD's OpenAPI schema (crd.ts), so the two never disagree.
 */
import semver from 'semver'
import { cronProblem } from './windows.ts'
import { celProblem } from './cel.ts'
import { z } from 'zod'
import { OCI_REPOSITORY, repositoryPath } from '../shared/artifact.ts'
import type { OrasOptions } from '../shared/oras.ts'
import { SUBDOMAIN_RULE } from '../shared/names.ts'
import { DURATION, durationMs, POSITIVE_DURATION } from '../shared/duration.ts'
import { DNS_LABEL } from '../shared/validation.ts'
import { NOTIFY_EVENTS } from './notify-events.ts'

export const GROUP = 'berth.dev'
export const VERSION = 'v1alpha1'
export const API_VERSION = `${GROUP}/${VERSION}`
export const KIND = 'Environment'
export const PLURAL = 'environments'

/** The reference to Environment `name` in `namespace`, for get, patch and watch calls. */
export function environmentRef(
  namespace: string,
  name: string,
): { apiVersion: string; kind: string; metadata: { name: string; namespace: string } } {
  return { apiVersion: API_VERSION, kind: KIND, metadata: { name, namespace } }
}

export {
  FINALIZER,
  inShard,
  OWNER_LABELS,
  PROMOTED_BY,
  RECONCILE_REQUESTED_AT,
  SHARD_LABEL,
  shardSelector,
  SUSPENDED,
} from './well-known.ts'

const duration = z.string().regex(DURATION, 'must be a duration such as 30s, 5m or 1h')
/** A cron schedule croner accepts (5 or 6 fields), in `timeZone` when given. */
const windowSchema = z
  .strictObject({
    kind: z.enum(['allow', 'deny']),
    schedule: z.string().min(1).describe('cron: when the window opens (minute hour day-of-month month day-of-week)'),
    duration: z.string().regex(POSITIVE_DURATION, 'must be a duration longer than 0s, such as 2h').describe('how long it stays open'),
    timeZone: z.string().optional().describe('IANA time zone of the schedule (Europe/Berlin); default UTC'),
  })
  .superRefine((w, ctx) => {
    const problem = cronProblem(w.schedule, w.timeZone)
    if (problem) ctx.addIssue({ code: 'custom', message: problem, path: ['schedule'] })
  })

/** `<cluster>/<namespace>/<name>`: an Environment anywhere, as its attestations name it. */
const ATTESTED_IDENTITY = /^[^/\s]+\/[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/

/** `< 0.01`, `>= 1`: how a metric check's value must compare. RE2-safe, as the CRD's pattern. */
export const METRIC_CONDITION = /^(<|<=|>|>=|==|!=) *-?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$/

const metricCheckSchema = z.strictObject({
  name: z.string().max(63).regex(DNS_LABEL, 'must be a DNS label, such as error-rate').describe('names the check in status'),
  query: z.string().min(1).max(4096).describe('PromQL, evaluated as an instant query: one number, or a vector'),
  condition: z
    .string()
    .regex(METRIC_CONDITION, 'must be a comparison with a number, such as "< 0.01" or ">= 1"')
    .describe('what every value must satisfy, such as "< 0.01"'),
  for: duration.default('2m').describe('how long the condition must hold at every evaluation before Ready'),
  interval: z
    .string()
    .regex(POSITIVE_DURATION, 'must be a duration longer than 0s, such as 30s')
    .default('30s')
    .describe('how often to evaluate'),
  secretRef: z
    .strictObject({ name: z.string().min(1) })
    .optional()
    .describe('a Secret: the Prometheus URL under "address", a bearer token under "token", a CA under "ca.crt"; '
      + 'default the reconciler\'s --prometheus-address'),
})

/** A CEL expression: refused here, naming it, when it does not parse or names what an object lacks. */
const celExpr = z.string().min(1).max(2048).superRefine((source, ctx) => {
  const problem = celProblem(source)
  if (problem) ctx.addIssue({ code: 'custom', message: `"${source}" ${problem}` })
})

const healthExprSchema = z.strictObject({
  apiVersion: z.string().min(1).describe('apiVersion of the kind, such as cert-manager.io/v1'),
  kind: z.string().min(1).describe('the kind these expressions judge, instead of kstatus'),
  current: celExpr.describe('CEL: true when the object is healthy'),
  failed: celExpr.optional().describe('CEL: true when it has failed'),
  inProgress: celExpr.optional().describe('CEL: true while it is still on its way'),
})

export const specSchema = z.strictObject({
  source: z.strictObject({
    repository: z
      .string()
      .regex(OCI_REPOSITORY, 'must be oci://<registry>/<path> without a tag')
      .describe('OCI repository of the artifacts, oci://<registry>/<path>'),
    secretRef: z
      .strictObject({ name: z.string().min(1) })
      .optional()
      .describe('a kubernetes.io/dockerconfigjson Secret in the same namespace'),
    plainHTTP: z.boolean().optional().describe('the registry speaks plain HTTP'),
    insecure: z.boolean().optional().describe('skip TLS verification of the registry'),
  }),
  version: z
    .string()
    .min(1)
    .refine((v) => semver.validRange(v) !== null, 'must be a version (1.2.3) or a semver range (~1.2, >=1.0.0 <2)')
    .describe('exact version or semver range; prereleases only when the range names one'),
  digest: z
    .string()
    .regex(/^sha256:[a-f0-9]{64}$/, 'must be sha256:<64 hex>')
    .optional()
    .describe('when set, the version must resolve to this digest'),
  path: z
    .string()
    .regex(/^[^/.][^\\]*$/, 'must be a relative folder inside the artifact')
    .optional()
    .describe('folder inside the artifact; default the Environment name'),
  interval: duration.default('5m').describe('how often to re-check the artifact and correct drift'),
  timeout: z
    .string()
    .regex(POSITIVE_DURATION, 'must be a duration longer than 0s, such as 30s or 5m')
    .default('5m')
    .describe('how long applied objects may take to become healthy'),
  prune: z.boolean().default(true).describe('delete objects that left the artifact'),
  suspend: z.boolean().default(false).describe('stop every change until resumed'),
  driftPolicy: z.enum(['correct', 'warn']).default('correct'),
  deletionPolicy: z
    .enum(['delete', 'orphan'])
    .default('delete')
    .describe('what deleting the Environment does to what it applied'),
  targetNamespace: z.string().max(63).regex(DNS_LABEL, 'must be a DNS label').optional(),
  verify: z
    .strictObject({
      provider: z.enum(['cosign']),
      secretRef: z.strictObject({ name: z.string().min(1) }).describe('a Secret whose *.pub keys are trusted'),
    })
    .optional()
    .describe('apply only versions signed (cosign, key-based) over their exact digest by one of the trusted keys'),
  decryption: z
    .strictObject({
      provider: z.enum(['sops']),
      secretRef: z
        .strictObject({ name: z.string().min(1) })
        .describe('a Secret in this namespace whose *.agekey entries hold age identities (Flux\'s convention)'),
    })
    .optional()
    .describe('decrypt the artifact\'s SOPS-encrypted Secrets in memory, just before they are applied'),
  serviceAccountName: z
    .string()
    .max(253)
    .regex(SUBDOMAIN_RULE.pattern, 'must be the name of a ServiceAccount in this namespace')
    .optional()
    .describe('apply, prune and read everything as this ServiceAccount of the Environment\'s namespace (impersonation)'),
  rollback: z
    .enum(['onFailure'])
    .optional()
    .describe('onFailure: when a new version fails health within timeout, re-apply the last healthy digest'),
  promotion: z
    .strictObject({
      from: z
        .string()
        .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be the name of an Environment in this namespace')
        .optional()
        .describe('an upstream Environment in this namespace of this cluster'),
      attested: z
        .strictObject({
          environment: z
            .string()
            .regex(ATTESTED_IDENTITY, 'must be <cluster>/<namespace>/<name> (the upstream reconciler\'s --cluster-name)')
            .describe('who must have attested the digest healthy: <cluster>/<namespace>/<name>'),
          secretRef: z
            .strictObject({ name: z.string().min(1) })
            .describe('a Secret whose *.pub keys are trusted to sign attestations'),
        })
        .optional()
        .describe('an upstream anywhere: its signed health attestation in the registry is the evidence'),
      soak: duration.optional().describe('how long the upstream must have been healthy on the digest; default 0s'),
      windows: z
        .array(windowSchema)
        .max(20)
        .optional()
        .describe('when new versions may land: outside every allow window, or inside a deny one, they are held'),
      approvals: z
        .strictObject({
          required: z.number().int().min(1).max(10).describe('distinct people, none of them who pinned it'),
        })
        .optional()
        .describe('the two-person rule: a new version lands once this many others approved it (berth approve)'),
    })
    .refine((p) => p.from === undefined || p.attested === undefined, {
      message: 'must name at most one upstream: from (this cluster) or attested (anywhere)',
    })
    .refine((p) => p.soak === undefined || p.from !== undefined || p.attested !== undefined, {
      message: 'soak needs an upstream (from or attested)',
    })
    .optional()
    .describe('policy: an upstream new versions must be proven on (and for soak), and windows they may land in'),
  attest: z
    .strictObject({
      secretRef: z
        .strictObject({ name: z.string().min(1) })
        .describe('a Secret with cosign.key, cosign.password and .dockerconfigjson (push credentials)'),
      after: duration.default('0s').describe('how long a version must have been Ready before it is attested'),
    })
    .optional()
    .describe('sign and push a health attestation for each digest that runs healthy here (and one when it fails)'),
  health: z
    .strictObject({
      metrics: z
        .array(metricCheckSchema)
        .max(10)
        .optional()
        .describe('Prometheus queries a new version must satisfy, after its objects are Ready, before it is Ready'),
      exprs: z
        .array(healthExprSchema)
        .max(20)
        .optional()
        .describe('CEL health rules for kinds kstatus cannot judge (as Flux\'s healthCheckExprs); they take precedence'),
    })
    .refine((h) => new Set(h.metrics?.map((m) => m.name)).size === (h.metrics?.length ?? 0), {
      message: 'metrics: each check needs a name of its own',
    })
    .optional()
    .describe('what makes a version healthy beyond kstatus: metric gates and CEL rules'),
  dependsOn: z
    .array(
      z.strictObject({
        name: z
          .string()
          .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be the name of an Environment in this namespace'),
      }),
    )
    .max(20)
    .optional()
    .describe('Environments of this namespace that must be Ready on their current version before a new one lands here'),
  notify: z
    .array(
      z.strictObject({
        type: z.enum(['webhook', 'slack', 'github']),
        secretRef: z
          .strictObject({ name: z.string().min(1) })
          .describe('a Secret in this namespace: the URL under "address", a token under "token", a CA under "ca.crt"'),
        events: z
          .array(z.enum(NOTIFY_EVENTS))
          .min(1)
          .optional()
          .describe('what to tell this receiver; default every event'),
      }),
    )
    .max(10)
    .optional()
    .describe('receivers told when a version is applied, becomes Ready, fails, is rolled back, and more'),
}).superRefine((spec, ctx) => {
  // A check that must hold longer than the version may take to become healthy could never pass.
  const timeout = durationMs(spec.timeout)
  for (const [i, check] of (spec.health?.metrics ?? []).entries()) {
    if (durationMs(check.for) >= timeout) {
      ctx.addIssue({
        code: 'custom',
        path: ['health', 'metrics', i, 'for'],
        message: `${check.for} must be shorter than spec.timeout (${spec.timeout}), which bounds the rollout and the `
          + 'checks together: raise the timeout or shorten for',
      })
    }
  }
})
export type EnvironmentSpec = z.infer<typeof specSchema>
export type Receiver = NonNullable<EnvironmentSpec['notify']>[number]

const conditionSchema = z.object({
  type: z.string().describe('Ready, Reconciling, Stalled or Suspended'),
  status: z.enum(['True', 'False', 'Unknown']),
  reason: z.string().describe('one word, CamelCase: docs/troubleshooting.md lists every one'),
  message: z.string(),
  lastTransitionTime: z.string().describe('when status last changed (RFC 3339)'),
  observedGeneration: z.number().int().optional().describe('the generation this condition was decided for'),
})
const inventoryEntrySchema = z.object({
  apiVersion: z.string(),
  kind: z.string(),
  namespace: z.string().optional(),
  name: z.string(),
})
const historyEntrySchema = z.object({
  version: z.string(),
  digest: z.string(),
  started: z.string().describe('when this application began (RFC 3339)'),
  finished: z.string().describe('when it reached its result'),
  result: z.string().describe('Succeeded, Progressing, or the reason it failed (HealthCheckFailed, …)'),
  by: z.string().optional().describe('who pinned it (berth.dev/promoted-by), or "berth (automatic rollback)"'),
  check: z
    .string()
    .optional()
    .describe('what decided the result, when more than kstatus did: a metric check, a CEL rule'),
})

const attestedEntrySchema = z.object({
  version: z.string(),
  digest: z.string(),
  result: z.string().describe('healthy, or failed when the digest later failed here'),
  readySince: z.string().describe('when the digest became Ready here'),
  at: z.string().describe('when the attestation was pushed'),
  reference: z.string().describe('where: <repository>:sha256-<hex>.att'),
})

const metricStateSchema = z.object({
  name: z.string(),
  condition: z.string().describe('what the value must satisfy'),
  result: z
    .enum(['Waiting', 'Passing', 'Passed', 'Failed'])
    .describe('Waiting: no value yet; Passing: holding, not for long enough; Passed; Failed'),
  value: z.string().optional().describe('the last value read'),
  at: z.string().optional().describe('when it was last evaluated'),
  passingSince: z.string().optional().describe('since when every evaluation satisfied the condition'),
  message: z.string().optional().describe('why there is no value, or what failed'),
})

/**
 * The status berth writes. Also the CRD's structural status schema (crd.ts), so the apiserver
 * prunes anything else and `kubectl explain environment.status` documents every field.
 */
export const statusSchema = z.object({
  observedGeneration: z.number().int().optional().describe('the generation of the spec the last pass handled'),
  conditions: z.array(conditionSchema).optional(),
  lastAppliedVersion: z.string().optional().describe('the version whose objects run now'),
  lastAppliedDigest: z.string().optional().describe('its digest (sha256:…)'),
  shortDigest: z.string().optional().describe('the first 12 hex digits of lastAppliedDigest, for kubectl get'),
  lastAttemptedVersion: z.string().optional().describe('the version the pin resolved to at the last pass'),
  lastAttemptedDigest: z.string().optional().describe('its digest'),
  lastHandledReconcileAt: z
    .string()
    .optional()
    .describe('the berth.dev/reconcile-requested-at value the last pass handled (berth reconcile --wait)'),
  verified: z
    .object({ digest: z.string(), key: z.string(), keyId: z.string(), signature: z.string(), keys: z.string() })
    .optional()
    .describe('the last digest whose signature was verified, the key that matched, the keys it was checked against'),
  rolledBackFrom: z
    .string()
    .optional()
    .describe('the pinned digest that failed health and was rolled back from (rollback: onFailure)'),
  inventory: z.array(inventoryEntrySchema).optional().describe('every object the applied version owns'),
  attested: z
    .array(attestedEntrySchema)
    .optional()
    .describe('the health attestations this Environment pushed (spec.attest), the last 10, oldest first'),
  metrics: z
    .object({
      digest: z.string().describe('the version these checks judge'),
      generation: z.number().int().optional().describe('the spec generation they were judged under'),
      checks: z.array(metricStateSchema),
    })
    .optional()
    .describe('the metric checks of spec.health.metrics for the last version they judged: last value and time each'),
  history: z.array(historyEntrySchema).optional().describe('the last 10 applications, oldest first'),
})

export type Condition = z.infer<typeof conditionSchema>
export type InventoryEntry = z.infer<typeof inventoryEntrySchema>
export type HistoryEntry = z.infer<typeof historyEntrySchema>
export type AttestedEntry = z.infer<typeof attestedEntrySchema>
export type MetricState = z.infer<typeof metricStateSchema>
export type MetricCheck = z.infer<typeof metricCheckSchema>
export type HealthExpr = z.infer<typeof healthExprSchema>
export type EnvironmentStatus = z.infer<typeof statusSchema>
/** Every field of the status: a pass that drops one sends it as null, so the apiserver drops it too. */
export const STATUS_FIELDS = Object.keys(statusSchema.shape) as ReadonlyArray<keyof EnvironmentStatus>

export type Environment = {
  apiVersion: typeof API_VERSION
  kind: typeof KIND
  metadata: {
    name: string
    namespace: string
    generation?: number
    resourceVersion?: string
    uid?: string
    deletionTimestamp?: string
    finalizers?: string[]
    annotations?: Record<string, string>
    labels?: Record<string, string>
  }
  spec: unknown
  status?: EnvironmentStatus
}

/** Where an Environment's artifacts are, as oras takes it (`host/path`), and how to reach it. */
export function sourceOf(spec: Pick<EnvironmentSpec, 'source'>, extra: OrasOptions = {}): { repository: string; access: OrasOptions } {
  const { source } = spec
  return {
    // The schema has checked the URL; repositoryPath only strips oci://.
    repository: repositoryPath(source.repository) ?? source.repository,
    access: {
      ...extra,
      ...(source.plainHTTP ? { plainHttp: true } : {}),
      ...(source.insecure ? { insecure: true } : {}),
    },
  }
}

/** The user a ServiceAccount authenticates as. */
export function serviceAccountUser(namespace: string, name: string): string {
  return `system:serviceaccount:${namespace}:${name}`
}
