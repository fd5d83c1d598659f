/**
 * Names berth and the cluster agree on: labels, annotations, the finalizer, the Lease. Dependency-free, so the CLI
 * can load it at start; install grants rights on exactly these, the reconciler uses them.
 */
import { BERTH } from '../shared/package-info.ts'

/** Labels berth puts on every object it applies; prune deletes only objects carrying both. */
export const OWNER_LABELS = { name: 'berth.dev/environment', namespace: 'berth.dev/environment-namespace' } as const
export const FINALIZER = 'berth.dev/finalizer'
/** Which reconciler shard an Environment belongs to (`berth reconciler --shard KEY`); none: the unsharded one. */
export const SHARD_LABEL = 'berth.dev/shard'

/** The label selector of shard `shard`'s Environments; without one, of those no shard claims. */
export function shardSelector(shard: string | undefined): string {
  return shard ? `${SHARD_LABEL}=${shard}` : `!${SHARD_LABEL}`
}

/** Whether an Environment with these labels belongs to `shard` (undefined: the unsharded reconciler). */
export function inShard(labels: Readonly<Record<string, string>> | undefined, shard: string | undefined): boolean {
  const own = labels?.[SHARD_LABEL]
  return shard ? own === shard : own === undefined
}
/** Set by `berth reconcile`: a new value asks for a pass now. */
export const RECONCILE_REQUESTED_AT = 'berth.dev/reconcile-requested-at'
/** Left by `berth suspend`, shown in status while suspended. */
export const SUSPENDED = {
  reason: 'berth.dev/suspended-reason',
  by: 'berth.dev/suspended-by',
  at: 'berth.dev/suspended-at',
} as const
/** `berth freeze`: every new version held until unfrozen (or until `until`, RFC 3339), who froze it, why and when. */
export const FROZEN = {
  reason: 'berth.dev/frozen-reason',
  by: 'berth.dev/frozen-by',
  at: 'berth.dev/frozen-at',
  until: 'berth.dev/frozen-until',
} as const
/**
 * On an Environment: the Environments (`ns/name`, comma-separated) whose objects it may take over.
 * Without it, an object another Environment owns is never applied (OwnershipConflict).
 */
export const TAKE_OVER_FROM = 'berth.dev/take-over-from'
/** On a Namespace or CRD: prune it even though it holds what this Environment does not own. */
export const PRUNE_WITH_CONTENTS = 'berth.dev/prune-with-contents'
/** Left by `berth promote` and `berth rollback`: who set the pin, recorded in the history. */
export const PROMOTED_BY = 'berth.dev/promoted-by'
/**
 * `berth promote --override`: the version that lands past windows, freezes and approvals, and why. Only holders of the
 * berth-override role may set them (the ValidatingAdmissionPolicy berth install adds).
 */
export const OVERRIDE = { version: 'berth.dev/override-version', reason: 'berth.dev/override-reason' } as const
/** On an Environment an app of apps pinned: `<namespace>/<name> <version>` of the parent that set the pin. */
export const PINNED_BY_ENVIRONMENT = 'berth.dev/pinned-by-environment'
/** berth's reconcilers, by the ServiceAccount name berth install gives them. */
export const RECONCILER_USER = /^system:serviceaccount:[^:]+:berth-reconciler$/

/** The leader-election Lease; the install manifests grant rights on this one only. */
export const LEASE_NAME = 'berth-reconciler'

/** Each shard elects its leader on a Lease of its own. */
export function leaseName(shard: string | undefined): string {
  return shard ? `${LEASE_NAME}-${shard}` : LEASE_NAME
}

/** Selects the reconciler's pods. */
export const RECONCILER_SELECTOR = {
  'app.kubernetes.io/name': 'berth',
  'app.kubernetes.io/component': 'reconciler',
} as const
/** On every object berth installs, the CRD included, however it is installed. */
export const INSTALL_LABELS = { ...RECONCILER_SELECTOR, 'app.kubernetes.io/version': BERTH.version }
