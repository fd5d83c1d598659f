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
    if (key === '$schema' || key === 'additionalProperties') continue
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
export function statusOpenApi(): Record<string, unknown> {
  return structural(z.toJSONSchema(statusSchema, { io: 'output' }))
}

/** The CustomResourceDefinition for `Environment`. */
export function environmentCrd(): {
  apiVersion: string
  kind: string
  metadata: { name: string; labels: Record<string, string> }
} & Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${PLURAL}.${GROUP}`, labels: INSTALL_LABELS },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        plural: PLURAL,
        singular: 'environment',
        kind: KIND,
        listKind: `${KIND}List`,
        shortNames: ['env', 'envs'],
        categories: ['berth'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Version', type: 'string', jsonPath: '.status.lastAppliedVersion' },
            { name: 'Digest', type: 'string', jsonPath: '.status.shortDigest' },
            { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type==\'Ready\')].status' },
            { name: 'Status', type: 'string', jsonPath: '.status.conditions[?(@.type==\'Ready\')].message' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: objectSchema({ spec: specOpenApi(), status: statusOpenApi() }),
        },
      ],
    },
  }
}
