/**
 * Names and namespaces by Kubernetes' own rules (apimachinery's validation package), checked
 * where manifests are parsed, so the packager refuses them at release time and the reconciler
 * before it sends anything: a bad name never reaches the apiserver, where it would come back
 * as a confusing NotFound or be read as a path (`..`).
 */
import { DNS_LABEL } from './validation.ts'

export type NameRule = { pattern: RegExp; max: number; text: string }

/** RFC 1123 label: namespaces, Services, and berth's environment names. */
export const LABEL_RULE: NameRule = {
  pattern: DNS_LABEL,
  max: 63,
  text: 'a lowercase RFC 1123 label (a-z, 0-9 and "-", starting and ending with a letter or digit, at most 63 characters)',
}

/** RFC 1123 subdomain: the rule for most kinds, custom resources included. */
export const SUBDOMAIN_RULE: NameRule = {
  pattern: /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
  max: 253,
  text:
    'a lowercase RFC 1123 subdomain (a-z, 0-9, "-" and ".", starting and ending with a letter or digit, '
    + 'at most 253 characters)',
}

/** Path segment name: RBAC kinds allow anything a URL path segment can hold (`system:aggregate-to-view`). */
export const PATH_SEGMENT_RULE: NameRule = {
  // eslint-disable-next-line no-control-regex -- control characters are refused
  pattern: /^(?!\.{1,2}$)[^/%\u0000-\u001f\u007f]+$/,
  max: 253,
  text: 'a path segment name (not "." or "..", no "/", "%" or control characters, at most 253 characters)',
}

// Kinds whose names apimachinery validates otherwise than as a subdomain; keyed `group/Kind`.
const RULES = new Map<string, NameRule>([
  ['/Namespace', LABEL_RULE],
  ['/Service', LABEL_RULE],
  ['rbac.authorization.k8s.io/Role', PATH_SEGMENT_RULE],
  ['rbac.authorization.k8s.io/ClusterRole', PATH_SEGMENT_RULE],
  ['rbac.authorization.k8s.io/RoleBinding', PATH_SEGMENT_RULE],
  ['rbac.authorization.k8s.io/ClusterRoleBinding', PATH_SEGMENT_RULE],
])

/** The rule `metadata.name` of this kind must follow. */
export function nameRule(object: { apiVersion: string; kind: string }): NameRule {
  const group = object.apiVersion.includes('/') ? object.apiVersion.slice(0, object.apiVersion.indexOf('/')) : ''
  return RULES.get(`${group}/${object.kind}`) ?? SUBDOMAIN_RULE
}

/** Why `value` breaks `rule`, or undefined when it follows it. */
export function nameProblem(value: string, rule: NameRule): string | undefined {
  if (value.length <= rule.max && rule.pattern.test(value)) return undefined
  const shown
    = value.length > 80 ? `${JSON.stringify(value.slice(0, 60))}… (${value.length} characters)` : JSON.stringify(value)
  return `${shown} is not valid: it must be ${rule.text}`
}

/** Problems with an object's name and namespace, each naming the field; empty when both are valid. */
export function objectNameProblems(object: {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace?: unknown }
}): string[] {
  const problems: string[] = []
  const name = nameProblem(object.metadata.name, nameRule(object))
  if (name) problems.push(`metadata.name ${name}`)
  if (typeof object.metadata.namespace === 'string') {
    const namespace = nameProblem(object.metadata.namespace, LABEL_RULE)
    if (namespace) problems.push(`metadata.namespace ${namespace}`)
  }
  return problems
}
