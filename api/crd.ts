/** The Environment CustomResourceDefinition, generated from the zod schema and the status schema. */
import { z } from 'zod'
import { GROUP, KIND, PLURAL, specSchema, statusSchema, VERSION } from './environment.ts'
import { INSTALL_LABELS } from './well-known.ts'

/** The OpenAPI v3 schema of `spec`, structural as CRDs require, from the zod schema. */
export function specOpenApi(): Record<string, unknown> {
  const spec = structural(z.toJSONSchema(specSchema, { io: 'input' }))
  // What zod's refinements say and JSON Schema cannot: the apiserver refuses it at once, as CEL.
  const promotion = (spec.properties as Record<string, Record<string, unknown>> | undefined)?.promotion
  if (promotion) promotion['x-kubernetes-validations'] = PROMOTION_RULES
  return spec
}

/** spec.promotion's refinements in the zod schema, as CRD validation rules. */
const PROMOTION_RULES = [
  {
    rule: '!(has(self.from) && has(self.attested))',
    message: 'must name at most one upstream: from (this cluster) or attested (anywhere)',
  },
  { rule: '!has(self.soak) || has(self.from) || has(self.attested)', message: 'soak needs an upstream (from or attested)' },
]

// JSON Schema → a CRD structural schema: drop what CRDs refuse ($schema, additionalProperties: false).
export function structural(node: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(node)) {
    // Not in a CRD's schema language: a map's keys are strings anyway.
    if (key === '$schema' || key === 'propertyNames') continue
    if (key === 'additionalProperties') {
      // false (a strict object) is what a structural schema says by listing properties; a map keeps its value
      // schema; anything at all ({}) is kept as it is written.
      if (value && typeof value === 'object') {
        if (Object.keys(value).length === 0) out['x-kubernetes-preserve-unknown-fields'] = true
        else out.additionalProperties = structural(value as Record<string, unknown>)
      }
      continue
    }
    // The apiserver stores no empty `properties`: written, it would differ from what is stored (an SSA conflict).
    if (key === 'properties' && value && typeof value === 'object' && Object.keys(value).length === 0) continue
    if (key === 'properties' && value && typeof value === 'object') {
      out.properties = Object.fromEntries(
        Object.entries(value as Record<string, Record<string, unknown>>).map(([k, v]) => [k, structural(v)]),
      )
    } else if (key === 'items' && value && typeof value === 'object' && !Array.isArray(value)) {
      out.items = structural(value as Record<string, unknown>)
    } else {
      out[key] = value
    }
  }
  return out
}

/** A CRD version's schema: a Kubernetes object with a required spec and, when given, a status. */
export function objectSchema(parts: { spec: Record<string, unknown>; status?: Record<string, unknown> }): object {
  return {
    openAPIV3Schema: {
      type: 'object',
      required: ['spec'],
      properties: { apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { type: 'object' }, ...parts },
    },
  }
}

/** The OpenAPI v3 schema of `status`: structural, so the apiserver keeps only what berth defines. */
export function statusOpenApi(schema: z.ZodType = statusSchema): Record<string, unknown> {
  return structural(z.toJSONSchema(schema, { io: 'output' }))
}

export type Crd = {
  apiVersion: string
  kind: string
  metadata: { name: string; labels: Record<string, string> }
} & Record<string, unknown>

/** A namespaced berth kind with a status subresource: its CRD, one served version. */
export function berthCrd(kind: {
  plural: string
  singular: string
  kind: string
  shortNames: string[]
  columns: Array<{ name: string; type: string; jsonPath: string }>
  spec: Record<string, unknown>
  status: Record<string, unknown>
}): Crd {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${kind.plural}.${GROUP}`, labels: INSTALL_LABELS },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        plural: kind.plural,
        singular: kind.singular,
        kind: kind.kind,
        listKind: `${kind.kind}List`,
        shortNames: kind.shortNames,
        categories: ['berth'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            ...kind.columns,
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: objectSchema({ spec: kind.spec, status: kind.status }),
        },
      ],
    },
  }
}

/** Ready's status and message, as `kubectl get` columns. */
export const READY_COLUMNS = {
  status: { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type==\'Ready\')].status' },
  message: { name: 'Status', type: 'string', jsonPath: '.status.conditions[?(@.type==\'Ready\')].message' },
}

/** The CustomResourceDefinition for `Environment`. */
export function environmentCrd(): Crd {
  return berthCrd({
    plural: PLURAL,
    singular: 'environment',
    kind: KIND,
    shortNames: ['env', 'envs'],
    columns: [
      { name: 'Version', type: 'string', jsonPath: '.status.lastAppliedVersion' },
      { name: 'Digest', type: 'string', jsonPath: '.status.shortDigest' },
      READY_COLUMNS.status,
      READY_COLUMNS.message,
    ],
    spec: specOpenApi(),
    status: statusOpenApi(),
  })
}
