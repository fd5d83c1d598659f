/**
 * Defaults of how berth runs in a cluster; dependency-free, so the CLI can show them in help without loading the
 * client.
 */
import { BERTH } from '../shared/package-info.ts'

export const INSTALL_DEFAULTS = {
  namespace: 'berth-system',
  image: `ghcr.io/berth-dev/berth:${BERTH.version}`,
  replicas: 2,
} as const
