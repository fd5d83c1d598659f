/**
 * Who did what, said by the apiserver itself — admission policies in CEL (admissionregistration.k8s.io/v1, GA, no
 * webhook server), which berth install adds so the reconciler can trust two records a tenant could otherwise forge:
 * - `berth-promoted-by` (MutatingAdmissionPolicy): on every change of an Environment's pin (spec.version or
 *   spec.digest), stamp `berth.dev/promoted-by` with the requester's name, overwriting whatever the request carried;
 *   a `kubectl edit` or a GitOps tool's apply records its real author — the reconciler too, when an app of apps pins
 *   its children (they say which parent and version in `berth.dev/pinned-by-environment`).
 * - `berth-approvals` (ValidatingAdmissionPolicy): an Approval is admitted only when its approver is the requester,
 *   and never changes afterwards.
 * - `berth-override` (ValidatingAdmissionPolicy): setting or changing an override (`berth promote --override`) takes
 *   the `override` verb on environments, which only the berth-override ClusterRole grants.
 */
import { APPROVAL_PLURAL, approvalCrd } from '../api/approval.ts'
import { GROUP, PLURAL } from '../api/environment.ts'
import { INSTALL_LABELS, OVERRIDE, PROMOTED_BY } from '../api/well-known.ts'

const API = 'admissionregistration.k8s.io/v1'

/** The policies, their bindings and the Approval CRD, for an install whose reconciler runs in `namespace`. */
export function admissionObjects(
  name: (base: string) => string,
  watchNamespace?: string,
): Array<Record<string, unknown>> {
  const meta = (base: string): Record<string, unknown> => ({ name: name(base), labels: INSTALL_LABELS })
  // Written with the apiserver's defaults, so kubectl and berth applying the same object never conflict.
  const rules = (resource: string): Record<string, unknown> => ({
    matchPolicy: 'Equivalent',
    namespaceSelector: {},
    objectSelector: {},
    resourceRules: [
      { apiGroups: [GROUP], apiVersions: ['*'], operations: ['CREATE', 'UPDATE'], resources: [resource], scope: '*' },
    ],
  })
  const pinned = (o: string): string => `(has(${o}.spec.digest) ? ${o}.spec.digest : '')`
  // An annotation's value, '' when absent (oldObject is null on CREATE).
  const annotation = (o: string, key: string): string =>
    `${o} != null && has(${o}.metadata.annotations) && '${key}' in ${o}.metadata.annotations ? `
    + `${o}.metadata.annotations['${key}'] : ''`
  // An install for one namespace binds its policies there only.
  const scope = watchNamespace
    ? { matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': watchNamespace } } } }
    : {}
  return [
    approvalCrd(),
    {
      apiVersion: API,
      kind: 'MutatingAdmissionPolicy',
      metadata: meta('berth-promoted-by'),
      spec: {
        failurePolicy: 'Fail',
        reinvocationPolicy: 'Never',
        matchConstraints: rules(PLURAL),
        matchConditions: [
          {
            name: 'pin-changed',
            expression: `request.operation == 'CREATE' || object.spec.version != oldObject.spec.version || `
              + `${pinned('object')} != ${pinned('oldObject')}`,
          },
        ],
        mutations: [
          {
            patchType: 'ApplyConfiguration',
            applyConfiguration: {
              expression: `Object{metadata: Object.metadata{annotations: {"${PROMOTED_BY}": request.userInfo.username}}}`,
            },
          },
        ],
      },
    },
    {
      apiVersion: API,
      kind: 'MutatingAdmissionPolicyBinding',
      metadata: meta('berth-promoted-by'),
      spec: { policyName: name('berth-promoted-by'), ...scope },
    },
    {
      apiVersion: API,
      kind: 'ValidatingAdmissionPolicy',
      metadata: meta('berth-override'),
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: rules(PLURAL),
        variables: [
          { name: 'after', expression: annotation('object', OVERRIDE.reason) },
          { name: 'before', expression: annotation('oldObject', OVERRIDE.reason) },
          { name: 'version', expression: annotation('object', OVERRIDE.version) },
          { name: 'versionBefore', expression: annotation('oldObject', OVERRIDE.version) },
        ],
        validations: [
          {
            // The "override" verb on environments: granted by the berth-override ClusterRole only.
            expression: '(variables.after == variables.before && variables.version == variables.versionBefore) || '
              + `authorizer.group('${GROUP}').resource('${PLURAL}').namespace(object.metadata.namespace)`
              + `.name(object.metadata.name).check('override').allowed()`,
            messageExpression: `request.userInfo.username + ' may not override promotion policy: that takes the '`
              + ` + 'berth-override role'`,
          },
        ],
      },
    },
    {
      apiVersion: API,
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: meta('berth-override'),
      spec: { policyName: name('berth-override'), validationActions: ['Deny'], ...scope },
    },
    {
      apiVersion: API,
      kind: 'ValidatingAdmissionPolicy',
      metadata: meta('berth-approvals'),
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: rules(APPROVAL_PLURAL),
        validations: [
          {
            expression: 'object.spec.approver == request.userInfo.username',
            messageExpression: `'an approval is given in one\\'s own name: approver must be ' + request.userInfo.username`,
          },
          {
            expression: `request.operation == 'CREATE' || object.spec == oldObject.spec`,
            message: 'an approval never changes once given; delete it and approve again',
          },
        ],
      },
    },
    {
      apiVersion: API,
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: meta('berth-approvals'),
      spec: { policyName: name('berth-approvals'), validationActions: ['Deny'], ...scope },
    },
  ]
}
