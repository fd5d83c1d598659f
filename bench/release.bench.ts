/**
 * release: the whole release job, as a user waits for it, on the example config repository grown to every kind of
 * environment (its kustomize overlays, a plain folder and a Helm chart): render every environment, validate,
 * package, push and sign.
 *   - berth: `berth push <dir> --sign --key cosign.key`, one command.
 *   - the Flux-style pipeline, with the real tools: `kubectl kustomize` / `helm template` / a copy per environment
 *     into one folder, one after another as a CI script runs them; `flux push artifact`; `cosign sign --key` of the
 *     pushed digest.
 * Same machine, same registry, same key, five rounds each, alternating; wall and CPU (user + system of the command
 * and its children, /usr/bin/time). Prints one line `release: berth N ms, flux pipeline N ms, ratio r; …`.
 */
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { load } from 'js-yaml'
import { writeYaml } from '../shared/yaml-writer.ts'
import { ensureFlux, ensureParts } from '../test/ground/build.ts'
import { startGround, stopGround } from '../test/ground/ground.ts'
import { median } from './support/stats.ts'

const ROUNDS = 5
const root = join(import.meta.dirname, '..')
const say = (line: string): boolean => process.stderr.write(`bench: ${line}\n`)
// jq where there is one (as Flux's docs pipe `flux push artifact -o json`); else a Node one-liner, ~40 ms slower.
const JQ = (await execa('jq', ['--version']).then(() => true, () => false))
  ? 'jq'
  : 'node -e \'const r=JSON.parse(require("fs").readFileSync(0)); console.log(r.repository + "@" + r.digest)\' --'

type Measured = { wall: number; cpu: number }
type Helm = { chart: string; values?: string[]; namespace?: string }
type Source = { kustomize?: string; manifests?: string; helm?: Helm }

const parts = await ensureParts(say)
const ground = await startGround({ say })
const flux = await ensureFlux(say)
const work = await mkdtemp(join(tmpdir(), 'berth-release-bench-'))

/** Wall and CPU of one command and its children. */
async function measured(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<Measured> {
  const times = join(work, 'time.txt')
  const started = performance.now()
  await execa('/usr/bin/time', ['-f', '%U %S', '-o', times, command, ...args], { env })
  const wall = performance.now() - started
  const [user = 0, system = 0] = (await readFile(times, 'utf8')).trim().split(/\s+/).slice(-2).map(Number)
  return { wall, cpu: (user + system) * 1000 }
}

/** The example, grown by a plain folder and a Helm chart: every kind of environment berth renders. */
async function configRepository(registry: string): Promise<{ dir: string; environments: Record<string, Source> }> {
  const dir = join(work, 'repo')
  await cp(join(root, 'examples', 'shop-config'), dir, { recursive: true })
  const config = load(await readFile(join(dir, 'berth.yaml'), 'utf8')) as { environments: Record<string, Source> }
  const environments: Record<string, Source> = {
    ...config.environments,
    edge: { manifests: 'edge' },
    sandbox: { helm: { chart: 'chart', values: ['chart/values-sandbox.yaml'], namespace: 'sandbox' } },
  }
  const configMap = (name: string, i: number): object => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: `${name}-${i}`, namespace: 'edge' },
    data: { index: String(i), region: 'edge' },
  })
  await mkdir(join(dir, 'edge'), { recursive: true })
  await mkdir(join(dir, 'chart', 'templates'), { recursive: true })
  await writeFile(join(dir, 'edge', 'namespace.yaml'), writeYaml({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'edge' } }))
  await writeFile(join(dir, 'edge', 'settings.yaml'), Array.from({ length: 20 }, (_, i) => writeYaml(configMap('edge', i))).join('---\n'))
  await writeFile(join(dir, 'chart', 'Chart.yaml'), writeYaml({ apiVersion: 'v2', name: 'shop', version: '0.1.0' }))
  await writeFile(join(dir, 'chart', 'values.yaml'), writeYaml({ replicas: 1, image: 'ghcr.io/acme/shop:2.4.1' }))
  await writeFile(join(dir, 'chart', 'values-sandbox.yaml'), writeYaml({ replicas: 2 }))
  await writeFile(
    join(dir, 'chart', 'templates', 'deployment.yaml'),
    [
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata:',
      '  name: {{ .Release.Name }}',
      '  namespace: {{ .Release.Namespace }}',
      'spec:',
      '  replicas: {{ .Values.replicas }}',
      '  selector: {matchLabels: {app: shop}}',
      '  template:',
      '    metadata: {labels: {app: shop}}',
      '    spec: {containers: [{name: shop, image: {{ .Values.image | quote }}}]}',
      '',
    ].join('\n'),
  )
  await writeFile(
    join(dir, 'berth.yaml'),
    writeYaml({
      apiVersion: 'berth.dev/v1alpha1',
      kind: 'Package',
      artifact: { repository: `oci://${registry}/bench/release-berth`, source: 'https://github.com/acme/shop-config' },
      environments,
    }),
  )
  return { dir, environments }
}

/** The Flux-style release job as a CI script: render each environment in turn, push, sign the digest. */
function pipelineScript(dir: string, environments: Record<string, Source>): string {
  const lines = ['set -euo pipefail', 'out=$(mktemp -d)']
  for (const [name, source] of Object.entries(environments)) {
    lines.push(`mkdir -p "$out/${name}"`)
    if (source.kustomize) lines.push(`"$KUBECTL" kustomize "${join(dir, source.kustomize)}" > "$out/${name}/all.yaml"`)
    if (source.manifests) lines.push(`cp -r "${join(dir, source.manifests)}/." "$out/${name}/"`)
    if (source.helm) {
      const values = (source.helm.values ?? []).map((v) => `--values "${join(dir, v)}"`).join(' ')
      lines.push(
        `"$HELM" template ${name} "${join(dir, source.helm.chart)}" --include-crds --namespace ${source.helm.namespace ?? name} `
        + `${values} > "$out/${name}/all.yaml"`,
      )
    }
  }
  lines.push(
    'ref=$("$FLUX" push artifact "oci://$REGISTRY/bench/release-flux:$VERSION" --path="$out" '
    + '--source=https://github.com/acme/shop-config --revision="$VERSION@sha1:0000000000000000000000000000000000000000" '
    // As Flux's documentation signs a pushed artifact: the digest from `--output json` through jq.
    + `--insecure-registry --output json | ${JQ} -r '.repository + "@" + .digest')`,
    '"$COSIGN" sign --key "$KEY" --tlog-upload=false --allow-http-registry --yes "$ref" > /dev/null 2>&1',
    'rm -rf "$out"',
  )
  return `${lines.join('\n')}\n`
}

try {
  const registry = ground.registries.plain.host
  const { dir, environments } = await configRepository(registry)
  const password = 'bench'
  await execa(parts.cosign, ['generate-key-pair'], { cwd: work, env: { ...process.env, COSIGN_PASSWORD: password } })
  const key = join(work, 'cosign.key')
  const script = join(work, 'pipeline.sh')
  await writeFile(script, pipelineScript(dir, environments))
  const env = {
    ...process.env,
    BERTH_ORAS: parts.oras,
    BERTH_HELM: parts.helm,
    BERTH_KUBECTL: parts.kubectl,
    BERTH_COSIGN_PASSWORD: password,
    COSIGN_PASSWORD: password,
    SOURCE_DATE_EPOCH: '1700000000',
    KUBECTL: parts.kubectl,
    HELM: parts.helm,
    FLUX: flux,
    COSIGN: parts.cosign,
    REGISTRY: registry,
    KEY: key,
  }
  const berth: Measured[] = []
  const pipeline: Measured[] = []
  for (let round = 1; round <= ROUNDS; round++) {
    const version = `1.0.${round}`
    berth.push(
      await measured(
        process.execPath,
        // The revision as the pipeline gives flux (and as GITHUB_SHA gives berth in a release workflow): no git to ask.
        [join(root, 'bin/berth.js'), 'push', dir, '--version', version, '--revision', `${version}@sha1:${'0'.repeat(40)}`,
          '--sign', '--key', key, '--plain-http'],
        env,
      ),
    )
    pipeline.push(await measured('bash', [script], { ...env, VERSION: version }))
  }
  const b = { wall: median(berth.map((m) => m.wall)), cpu: median(berth.map((m) => m.cpu)) }
  const p = { wall: median(pipeline.map((m) => m.wall)), cpu: median(pipeline.map((m) => m.cpu)) }
  process.stdout.write(
    `release: berth ${b.wall.toFixed(0)} ms, flux pipeline ${p.wall.toFixed(0)} ms, ratio ${(b.wall / p.wall).toFixed(2)} `
    + `(goal <= 1.0); cpu berth ${b.cpu.toFixed(0)} ms, flux pipeline ${p.cpu.toFixed(0)} ms; `
    + `${Object.keys(environments).length} environments (kustomize, plain, helm), render + validate + package + push + `
    + `sign, median of ${ROUNDS}\n`,
  )
} finally {
  await rm(work, { recursive: true, force: true })
  await stopGround(ground)
}
