/**
 * One PromQL instant query against Prometheus' HTTP API (`POST /api/v1/query`), read as what a metric check needs:
 * the numbers it returned, nothing (an empty vector, NaN), no answer (unreachable, a timeout, a server error), or a
 * refusal that asking again will not change (a query that does not parse). A tenant names the address, and the
 * reconciler asks from inside the cluster, so link-local addresses (the cloud metadata endpoints) are refused, as for
 * notification receivers.
 */
import type { Kube } from '../../shared/kube.ts'
import { BERTH } from '../../shared/package-info.ts'
import { AddressGuard, DeniedAddressError } from '../outbound/address-guard.ts'
import { post } from '../outbound/http-post.ts'
import { readEndpointSecret } from '../outbound/endpoint-secret.ts'

/** Where Prometheus is and how to reach it: a Secret's `address`, `token` and `ca.crt`, or the reconciler's flag. */
export type PrometheusAccess = { address: string; token?: string | undefined; ca?: string | undefined }

/**
 * What one query said: every series' value (one for a scalar) as Prometheus wrote it; nothing to judge (an empty
 * vector, NaN: waiting); no answer (unreachable, a timeout, a server error: waiting); or a refusal that asking again
 * will not change (failure).
 */
type Values = { kind: 'values'; values: Array<{ text: string; value: number; series: string }> }
export type Reading = Values | { kind: 'none' | 'unreachable' | 'refused'; why: string }

/** Prometheus' own query timeout is 2m; a gate waits less for one answer, and comes back at its next interval. */
const QUERY_TIMEOUT_MS = 30_000
const guard = new AddressGuard()

type Answer = {
  status?: string
  errorType?: string
  error?: string
  data?: { resultType?: string; result?: unknown }
}

/** Ask `query` now. Never throws: every outcome is a {@link Reading}. */
export async function instantQuery(
  access: PrometheusAccess,
  query: string,
  options: { signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<Reading> {
  let url: URL
  try {
    url = new URL('api/v1/query', access.address.endsWith('/') ? access.address : `${access.address}/`)
  } catch {
    return { kind: 'refused', why: 'the Prometheus address is not a URL (http://prometheus.monitoring:9090)' }
  }
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    'accept': 'application/json',
    'user-agent': `berth/${BERTH.version}`,
    ...(access.token ? { authorization: `Bearer ${access.token}` } : {}),
  }
  let answer: { status: number; body: string }
  try {
    answer = await post(
      { url: url.toString(), headers, body: new URLSearchParams({ query }).toString() },
      {
        ca: access.ca,
        timeoutMs: options.timeoutMs ?? QUERY_TIMEOUT_MS,
        guard,
        ...(options.signal ? { signal: options.signal } : {}),
      },
    )
  } catch (error: unknown) {
    const why = error instanceof Error ? error.message : String(error)
    if (error instanceof DeniedAddressError) return { kind: 'refused', why }
    return { kind: 'unreachable', why: `Prometheus at ${url.origin} did not answer: ${why}` }
  }
  let parsed: Answer
  try {
    parsed = JSON.parse(answer.body) as Answer
  } catch {
    return { kind: 'unreachable', why: `Prometheus at ${url.origin} answered HTTP ${answer.status}, not its JSON API` }
  }
  if (parsed.status !== 'success') {
    const why = `Prometheus refused the query (${parsed.errorType ?? `HTTP ${answer.status}`}): ${parsed.error ?? ''}`
    // bad_data: the query itself is wrong. Anything else (timeout, execution, unavailable) may pass.
    return parsed.errorType === 'bad_data' ? { kind: 'refused', why } : { kind: 'unreachable', why }
  }
  return readResult(parsed.data)
}

function readResult(data: Answer['data']): Reading {
  const values: Array<{ text: string; value: number; series: string }> = []
  const add = (sample: unknown, series: string): void => {
    const text = Array.isArray(sample) ? String(sample[1]) : ''
    values.push({ text, value: Number(text), series })
  }
  if (data?.resultType === 'scalar') add(data.result, '')
  else if (data?.resultType === 'vector' && Array.isArray(data.result)) {
    for (const entry of data.result as Array<{ metric?: Record<string, string>; value?: unknown }>) {
      add(entry.value, seriesName(entry.metric ?? {}))
    }
  } else {
    return { kind: 'refused', why: `the query returns a ${data?.resultType ?? 'result'}, not a number or a vector` }
  }
  const numbers = values.filter((v) => !Number.isNaN(v.value))
  if (numbers.length === 0) {
    return { kind: 'none', why: values.length > 0 ? 'the query returned NaN (nothing to divide by yet?)' : 'no data yet' }
  }
  return { kind: 'values', values: numbers }
}

/** `{job="shop",code="500"}`: how a series is named in messages. */
function seriesName(labels: Record<string, string>): string {
  // The metric's name is in the query already.
  const pairs = Object.entries(labels).filter(([k]) => k !== '__name__').map(([k, v]) => `${k}="${v}"`)
  return pairs.length > 0 ? `{${pairs.join(',')}}` : ''
}

/**
 * Where a check's Prometheus is: its Secret (read as the Environment's identity, as everything it names), else the
 * reconciler's `--prometheus-address`. A Secret not there yet is waited for, like an unreachable Prometheus; none
 * named anywhere is refused.
 */
export async function prometheusFor(
  kube: Kube,
  namespace: string,
  secretName: string | undefined,
  fallback: string | undefined,
): Promise<PrometheusAccess | Reading> {
  if (!secretName) {
    if (fallback) return { address: fallback }
    return {
      kind: 'refused',
      why: 'no Prometheus: name a Secret (secretRef, with "address") or run the reconciler with --prometheus-address',
    }
  }
  const secret = await readEndpointSecret(kube, namespace, secretName)
  if (!secret) return { kind: 'unreachable', why: `Secret ${namespace}/${secretName} (secretRef) does not exist yet` }
  const { address, token, ca } = secret
  if (!address) return { kind: 'refused', why: `Secret ${namespace}/${secretName} (secretRef) has no "address"` }
  return { address, token, ca }
}
