/**
 * The ground's metrics: Debian's Pushgateway, which tests push values to, and Debian's Prometheus scraping it every
 * second, as a cluster's Prometheus scrapes its applications. Metric checks (spec.health.metrics) query that
 * Prometheus; a test steers a rollout by what it pushes. A test may start a Prometheus of its own (to stop it
 * mid-check) scraping the same Pushgateway.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { join } from 'node:path'
import { writeYaml } from '../../shared/yaml-writer.ts'
import { type Started, startProcess, waitUntil } from './processes.ts'

/** How often Prometheus scrapes the Pushgateway: a pushed value is queryable about this soon. */
export const SCRAPE_INTERVAL = '1s'

/** Start the Pushgateway on `host` (`address:port`); resolves once it answers. */
export async function startPushgateway(binary: string, dir: string, host: string): Promise<Started> {
  const started = startProcess('pushgateway', binary, [`--web.listen-address=${host}`, '--log.level=warn'], join(dir, 'pushgateway.log'))
  await waitUntil(started, async () => (await httpStatus(`http://${host}/-/ready`)) === 200, 20_000)
  return started
}

/**
 * Start Prometheus `name` on `host`, scraping the Pushgateway at `pushgateway`, its data in `dir/name` (kept across
 * a restart on the same folder); resolves once it is ready.
 */
export async function startPrometheus(
  binary: string,
  dir: string,
  name: string,
  host: string,
  pushgateway: string,
): Promise<Started> {
  const root = join(dir, name)
  await mkdir(root, { recursive: true })
  const config = join(root, 'prometheus.yml')
  await writeFile(
    config,
    writeYaml({
      global: { scrape_interval: SCRAPE_INTERVAL, evaluation_interval: SCRAPE_INTERVAL },
      // honor_labels: a pushed series keeps its own job and instance labels, as the Pushgateway's docs ask.
      scrape_configs: [{ job_name: 'pushgateway', honor_labels: true, static_configs: [{ targets: [pushgateway] }] }],
    }),
  )
  const started = startProcess(
    name,
    binary,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(root, 'data')}`,
      `--web.listen-address=${host}`,
      '--log.level=warn',
      // A value pushed once stays the answer for no longer than a test needs (the default is 5m).
      '--query.lookback-delta=30s',
    ],
    join(dir, `${name}.log`),
  )
  await waitUntil(started, async () => (await httpStatus(`http://${host}/-/ready`)) === 200, 60_000)
  return started
}

/**
 * Push `metrics` (name → value) as group `job` to the Pushgateway at `host`, replacing what the group held: what a
 * release's application would export.
 */
export async function pushMetrics(host: string, job: string, metrics: Record<string, number>): Promise<void> {
  const body = Object.entries(metrics).map(([name, value]) => `${name} ${value}\n`).join('')
  const status = await httpStatus(`http://${host}/metrics/job/${encodeURIComponent(job)}`, { method: 'PUT', body })
  if (status !== 200) throw new Error(`the Pushgateway answered HTTP ${status} to a push for job ${job}`)
}

/** The value Prometheus at `host` has now for `query` (the first series), or undefined. */
export async function queryValue(host: string, query: string): Promise<number | undefined> {
  const text = await httpText(`http://${host}/api/v1/query?query=${encodeURIComponent(query)}`)
  const answer = JSON.parse(text) as { data?: { result?: Array<{ value?: [number, string] }> } }
  const value = answer.data?.result?.[0]?.value?.[1]
  return value === undefined ? undefined : Number(value)
}

async function httpStatus(url: string, options: { method?: string; body?: string } = {}): Promise<number> {
  return (await httpCall(url, options)).status
}

async function httpText(url: string): Promise<string> {
  return (await httpCall(url, {})).body
}

function httpCall(url: string, options: { method?: string; body?: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', timeout: 5000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') })
      })
    })
    req.on('error', reject)
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.end(options.body)
  })
}
