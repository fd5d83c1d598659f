/**
 * The Approval: one person's consent to one version, by digest, of one Environment (`spec.promotion.approvals`). The
 * apiserver itself vouches for `approver`: the ValidatingAdmissionPolicy berth install adds admits an Approval only
 * when its approver is the requester, and never lets one change (install/policies.ts). A moved tag voids it: it names
 * the digest.
 */
import { z } from 'zod'
import { objectSchema, structural } from './crd.ts'
import { GROUP, VERSION } from './environment.ts'
import { INSTALL_LABELS } from './well-known.ts'

export const APPROVAL_KIND = 'Approval'
export const APPROVAL_PLURAL = 'approvals'
export const APPROVAL_API_VERSION = `${GROUP}/${VERSION}`

export const approvalSpecSchema = z.strictObject({
  environment: z.string().min(1).describe('the Environment approved, in this namespace'),
  version: z.string().min(1).describe('the version approved'),
  digest: z.string().regex(/^sha256:[a-f0-9]{64}$/, 'must be sha256:<64 hex>').describe('exactly which bytes'),
  approver: z.string().min(1).describe('who approves: the apiserver admits only the requester\'s own name'),
  reason: z.string().max(1024).optional(),
})
export type ApprovalSpec = z.infer<typeof approvalSpecSchema>
export type Approval = {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace: string; creationTimestamp?: string }
  spec: ApprovalSpec
}

type Crd = { apiVersion: string; kind: string; metadata: { name: string; labels: Record<string, string> } }

export function approvalCrd(): Crd & Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${APPROVAL_PLURAL}.${GROUP}`, labels: INSTALL_LABELS },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: { plural: APPROVAL_PLURAL, singular: 'approval', kind: APPROVAL_KIND, listKind: `${APPROVAL_KIND}List` },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          additionalPrinterColumns: [
            { name: 'Environment', type: 'string', jsonPath: '.spec.environment' },
            { name: 'Version', type: 'string', jsonPath: '.spec.version' },
            { name: 'Approver', type: 'string', jsonPath: '.spec.approver' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: objectSchema({ spec: structural(z.toJSONSchema(approvalSpecSchema, { io: 'input' })) }),
        },
      ],
    },
  }
}
