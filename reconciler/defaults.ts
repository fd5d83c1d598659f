/**
 * Defaults of how berth runs in a cluster; dependency-free, so the CLI can show them in help without loading the
 * client.
 */
import { BERTH } from '../shared/package-info.ts'

/** The leader-election Lease; the install manifests grant rights on this one only. */
export const LEASE_NAME = 'berth-reconciler'

/** Each shard elects its leader on a Lease of its own. */
export function leaseName(shard: string | undefined): string {
  return shard ? `${LEASE_NAME}-${shard}` : LEASE_NAME
}

export const INSTALL_DEFAULTS = {
  namespace: 'berth-system',
  image: `ghcr.io/berth-dev/berth:${BERTH.version}`,
  replicas: 2,
} as const

/** Selects the reconciler's pods. */
export const RECONCILER_SELECTOR = {
  'app.kubernetes.io/name': 'berth',
  'app.kubernetes.io/component': 'reconciler',
} as const
/** On every object berth installs, the CRD included, however it is installed. */
export const INSTALL_LABELS = { ...RECONCILER_SELECTOR, 'app.kubernetes.io/version': BERTH.version }
