/** CIDR ranges (`10.0.0.0/8`, `fd00::/8`, or one address), as flags and Node's BlockList take them. */
import { isIP } from 'node:net'

/** A CIDR as BlockList takes it; undefined when it is not one. */
export function parseCidr(cidr: string): { network: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [network = '', bits] = cidr.split('/')
  const family = isIP(network)
  const prefix = bits === undefined ? (family === 4 ? 32 : 128) : Number(bits)
  if (!family || !/^\d+$/.test(bits ?? '0') || prefix > (family === 4 ? 32 : 128)) return undefined
  return { network, prefix, family: family === 4 ? 'ipv4' : 'ipv6' }
}
