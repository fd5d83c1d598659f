/**
 * The `EnvironmentSet` API (berth.dev/v1alpha1): one Environment per open pull request, made from what the registry
 * holds. CI publishes each push to pull request N as the prerelease `0.0.0-pr.N.K` (K counts the pushes) and deletes
 * those tags when the pull request closes; the set keeps exactly one Environment per pull request with previews,
 * pinned to its newest, and removes it when the tags are gone or its ttl passes. The cluster needs no access to
 * GitHub: the registry is the source of truth.
 */
import { z } from 'zod'
import { DURATION, POSITIVE_DURATION } from '../shared/duration.ts'
import { berthCrd, type Crd, READY_COLUMNS, statusOpenApi, structural } from './crd.ts'
import { GROUP, specSchema, VERSION } from './environment.ts'
import { previewVersion } from '../shared/previews.ts'

export { previewOf, previewVersion } from '../shared/previews.ts'

export const SET_KIND = 'EnvironmentSet'
export const SET_PLURAL = 'environmentsets'
export const SET_API_VERSION = `${GROUP}/${VERSION}`

/** Labels on what a set makes: which set, which pull request. */
export const SET_LABEL = `${GROUP}/environment-set`
export const PREVIEW_LABEL = `${GROUP}/preview`

/** Where `{{ .number }}` may be written: any string of the template, the url, the namespace's labels. */
export const NUMBER_PLACEHOLDER = /\{\{\s*\.number\s*\}\}/g

const labelMap = z.record(z.string().max(317), z.string().max(63))

export const setSpecSchema = z.strictObject({
  source: specSchema.shape.source,
  previews: z
    .strictObject({})
    .describe('select pull-request prereleases: 0.0.0-pr.<number>.<push>, the newest push of each'),
  template: z
    .record(z.string(), z.unknown())
    .describe('the Environment spec of each preview, without source and version; {{ .number }} is the pull request'),
  namespaceTemplate: z
    .strictObject({ labels: labelMap.optional(), annotations: labelMap.optional() })
    .optional()
    .describe('create template.targetNamespace for each preview, with these labels; removed with the preview'),
  url: z.string().max(1024).optional().describe('where a preview can be seen, shown in status: https://pr-{{ .number }}.…'),
  maxPreviews: z.number().int().min(1).max(100).default(10).describe('previews at most; the oldest keep running'),
  ttl: z
    .string()
    .regex(POSITIVE_DURATION, 'must be a duration longer than 0s, such as 72h')
    .optional()
    .describe('how long a preview lives without a new push; default until its tags are gone'),
  interval: z.string().regex(DURATION, 'must be a duration such as 1m').default('1m').describe('how often to list tags'),
  serviceAccountName: specSchema.shape.serviceAccountName.describe(
    'the ServiceAccount of this namespace every preview acts as; the set creates Namespaces as it too',
  ),
})
export type SetSpec = z.infer<typeof setSpecSchema>

const previewSchema = z.object({
  number: z.number().int().describe('the pull request'),
  version: z.string().describe('its newest preview'),
  environment: z.string().describe('the Environment that runs it'),
  namespace: z.string().optional().describe('its targetNamespace'),
  ready: z.string().describe('its Environment\'s Ready: True, False or Unknown'),
  url: z.string().optional(),
  since: z.string().describe('when the set first saw this pull request'),
  pushed: z.string().describe('when the set first saw its newest preview (the ttl runs from here)'),
})
export type Preview = z.infer<typeof previewSchema>

export const setStatusSchema = z.object({
  observedGeneration: z.number().int().optional(),
  conditions: z
    .array(
      z.object({
        type: z.string(),
        status: z.enum(['True', 'False', 'Unknown']),
        reason: z.string(),
        message: z.string(),
        lastTransitionTime: z.string(),
        observedGeneration: z.number().int().optional(),
      }),
    )
    .optional(),
  count: z.number().int().optional().describe('previews running'),
  ready: z.number().int().optional().describe('of them Ready'),
  previews: z.array(previewSchema).optional().describe('each preview: pull request, version, Ready, url'),
  removing: z
    .array(z.object({ number: z.number().int(), environment: z.string(), namespace: z.string().optional() }))
    .optional()
    .describe('previews being removed: the Environment prunes first, then the Namespace the set made goes'),
  expired: z
    .array(z.object({ number: z.number().int(), version: z.string() }))
    .optional()
    .describe('previews removed by ttl: not brought back until a new push'),
})
export type SetStatus = z.infer<typeof setStatusSchema>
/** Every field of a set's status: a pass that drops one sends it as null. */
export const SET_STATUS_FIELDS = Object.keys(setStatusSchema.shape) as ReadonlyArray<keyof SetStatus>

export type EnvironmentSet = {
  apiVersion: string
  kind: string
  metadata: {
    name: string
    namespace: string
    uid?: string
    generation?: number
    resourceVersion?: string
    deletionTimestamp?: string
    finalizers?: string[]
  }
  spec: unknown
  status?: SetStatus
}

type Ref = { apiVersion: string; kind: string; metadata: { name: string; namespace: string } }
export const setRef = (namespace: string, name: string): Ref => ({
  apiVersion: SET_API_VERSION,
  kind: SET_KIND,
  metadata: { name, namespace },
})

/** The Environment of pull request `number` in set `set`. */
export const previewEnvironmentName = (set: string, number: number): string => `${set}-pr-${number}`

/** Replace `{{ .number }}` in every string of `value`. */
export function fillNumber<T>(value: T, number: number): T {
  return JSON.parse(JSON.stringify(value), (_key, v: unknown) =>
    typeof v === 'string' ? v.replace(NUMBER_PLACEHOLDER, String(number)) : v) as T
}

/** The Environment spec of pull request `number`: the template, filled, with the set's source, version and identity. */
export function previewSpec(spec: SetSpec, number: number, version: string): Record<string, unknown> {
  return {
    ...fillNumber(spec.template, number),
    source: spec.source,
    version,
    ...(spec.serviceAccountName ? { serviceAccountName: spec.serviceAccountName } : {}),
  }
}

/** Why the template cannot make an Environment, or undefined: it is checked as one, for a sample pull request. */
export function templateProblem(spec: SetSpec): string | undefined {
  for (const field of ['source', 'version', 'digest'] as const) {
    if (field in spec.template) return `template.${field}: the set sets it (source, and each preview's version)`
  }
  const named = spec.template.serviceAccountName
  if (named !== undefined && named !== spec.serviceAccountName) {
    return 'template.serviceAccountName: previews act as the set\'s spec.serviceAccountName; set it there'
  }
  if (spec.namespaceTemplate && typeof spec.template.targetNamespace !== 'string') {
    return 'namespaceTemplate needs template.targetNamespace: the Namespace it names is created for each preview'
  }
  const parsed = specSchema.safeParse(previewSpec(spec, 1, previewVersion(1, 1)))
  if (parsed.success) return undefined
  return parsed.error.issues
    .map((issue) => `template.${issue.path.map(String).join('.')}: ${issue.message}`)
    .join('; ')
}

export function environmentSetCrd(): Crd {
  return berthCrd({
    plural: SET_PLURAL,
    singular: 'environmentset',
    kind: SET_KIND,
    shortNames: ['envset'],
    columns: [
      { name: 'Previews', type: 'integer', jsonPath: '.status.count' },
      { name: 'Ready', type: 'integer', jsonPath: '.status.ready' },
      READY_COLUMNS.message,
    ],
    spec: structural(z.toJSONSchema(setSpecSchema, { io: 'input' })),
    status: statusOpenApi(setStatusSchema),
  })
}
