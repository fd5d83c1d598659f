/**
 * Where notifications may go. A tenant chooses its receiver's address and the reconciler posts
 * from inside the cluster, so an address that leads inward is refused: link-local ranges always
 * (169.254.0.0/16 and fe80::/10, which hold the cloud metadata endpoints 169.254.169.254 and
 * fd00:ec2::254, listed too), and whatever the operator adds with `--deny-receiver-cidr` (the
 * cluster's pod and service ranges, say). The check is made on the addresses the name resolves
 * to, at every try, and the connection then goes to exactly the address checked, so a name that
 * resolves elsewhere a moment later (DNS rebinding) gains nothing. Through an HTTP proxy the
 * proxy resolves the name again; the check before it still applies.
 */
import { lookup as dnsLookup } from 'node:dns/promises'
import type { LookupAddress, LookupOptions } from 'node:dns'
import { BlockList, isIP } from 'node:net'
import { parseCidr } from '../../shared/cidr.ts'

/** How names become addresses; injectable so tests control what a name means. */
export type Resolve = (hostname: string) => Promise<LookupAddress[]>

export const ALWAYS_DENIED = ['169.254.0.0/16', 'fe80::/10', 'fd00:ec2::254/128'] as const

/** A receiver address refused by the guard: final for this try, whatever the receiver would say. */
export class DeniedAddressError extends Error {}

export class AddressGuard {
  private readonly denied = new BlockList()
  private readonly resolve: Resolve

  constructor(extra: readonly string[] = [], resolve: Resolve = (host) => dnsLookup(host, { all: true })) {
    for (const cidr of [...ALWAYS_DENIED, ...extra]) {
      const parsed = parseCidr(cidr)
      if (!parsed) throw new Error(`${cidr} is not a CIDR (10.0.0.0/8, fd00::/8)`)
      this.denied.addSubnet(parsed.network, parsed.prefix, parsed.family)
    }
    this.resolve = resolve
  }

  /**
   * The addresses `hostname` may be reached at; throws, naming the address, when any of them is
   * denied (a name with one good and one bad address is refused: which one a connection takes is
   * not berth's choice).
   */
  async addresses(hostname: string): Promise<LookupAddress[]> {
    const host = hostname.replace(/^\[|\]$/g, '')
    const family = isIP(host)
    const found = family ? [{ address: host, family }] : await this.resolve(host)
    for (const { address } of found) {
      if (this.isDenied(address)) {
        const via = family ? '' : ` resolves to ${address}, which`
        throw new DeniedAddressError(
          `${host}${via} is in a denied range (link-local, cloud metadata, or --deny-receiver-cidr): `
          + 'receivers may not point inside the cluster; nothing was sent',
        )
      }
    }
    if (found.length === 0) throw new Error(`${host} resolves to no address`)
    return found
  }

  private isDenied(address: string): boolean {
    // An IPv4 address written as IPv6 (::ffff:169.254.169.254) is judged as the IPv4 address it is.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1]
    if (mapped) return this.denied.check(mapped, 'ipv4')
    return this.denied.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4')
  }
}

/** A `lookup` for http.request that hands out exactly `addresses`, already checked: no second DNS answer. */
export function pinnedLookup(addresses: readonly LookupAddress[]): (
  hostname: string,
  options: LookupOptions,
  callback: (error: Error | null, address: string | LookupAddress[], family?: number) => void,
) => void {
  return (_hostname, options, callback) => {
    const usable = addresses.filter((a) => !options.family || a.family === options.family)
    const first = usable[0]
    if (options.all) callback(null, usable)
    else if (first) callback(null, first.address, first.family)
    else callback(new Error('no address of the family asked for'), '', 0)
  }
}
