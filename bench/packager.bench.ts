/**
 * packager: `berth push <dir>` of a generated bundle (2,000 objects over three environments)
 * against its anchor, `flux push artifact` of the same rendered folder (the flux CLI is built as
 * a ground part for this benchmark), and the transport floor — `tar czf` + `oras push` of the same
 * files — plus `berth package` + `berth push` as two commands; same registry, same run, five rounds
 * each, alternating. Wall and CPU (user + system, from /usr/bin/time) per command.
 * Prints one line: `packager: …` with the medians, `flux ratio <r>` (berth push wall ÷ flux push
 * artifact wall) and berth's peak RSS.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { writeYaml } from '../shared/yaml-writer.ts'
import { ensureFlux } from '../test/ground/build.ts'
import { startGround, stopGround } from '../test/ground/ground.ts'
import { median, timed } from './support/stats.ts'

const ROUNDS = 5
const ENVIRONMENTS = ['dev', 'staging', 'prod']
const OBJECTS = 2000
const root = join(import.meta.dirname, '..')

function objectsFor(env: string, count: number): object[] {
  const out: object[] = []
  for (let i = 0; i < count; i++) {
    const name = `svc-${String(i).padStart(4, '0')}`
    const labels = { 'app.kubernetes.io/name': name, 'example.com/env': env }
    if (i % 3 === 0) {
      out.push({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name, namespace: env, labels },
        spec: {
          replicas: 2,
          selector: { matchLabels: { 'app.kubernetes.io/name': name } },
          template: {
            metadata: { labels },
            spec: {
              containers: [
                {
                  name: 'app',
                  image: `registry.example.com/${name}:1.0.${i}`,
                  ports: [{ containerPort: 8080 }],
                  resources: { requests: { cpu: '50m', memory: '64Mi' } },
                },
              ],
            },
          },
        },
      })
    } else if (i % 3 === 1) {
      out.push({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name, namespace: env, labels },
        spec: { selector: { 'app.kubernetes.io/name': name }, ports: [{ port: 80, targetPort: 8080 }] },
      })
    } else {
      out.push({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name, namespace: env, labels },
        data: { LOG_LEVEL: 'info', FEATURE: `f-${i}`, TIMEOUT: `${i % 30}s` },
      })
    }
  }
  return out
}

const say = (line: string): boolean => process.stderr.write(`bench: ${line}\n`)
const ground = await startGround({ say })
const flux = await ensureFlux(say)

type Measured = { wall: number; cpu: number; rssKiB: number }

/**
 * Wall and CPU milliseconds of one command, CPU as /usr/bin/time reports it (user + system, the
 * command and its children), and the peak RSS of the largest process among them (berth's node).
 */
async function measured(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<Measured> {
  const times = join(work, 'time.txt')
  const started = performance.now()
  await execa('/usr/bin/time', ['-f', '%U %S %M', '-o', times, command, ...args], options)
  const wall = performance.now() - started
  const fields = (await readFile(times, 'utf8')).trim().split(/\s+/).slice(-3).map(Number)
  const [user = 0, system = 0, rssKiB = 0] = fields
  return { wall, cpu: (user + system) * 1000, rssKiB }
}
const work = await mkdtemp(join(tmpdir(), 'berth-bench-'))
try {
  const repo = join(work, 'repo')
  const perEnv = Math.ceil(OBJECTS / ENVIRONMENTS.length)
  const environments: Record<string, object> = {}
  for (const env of ENVIRONMENTS) {
    await mkdir(join(repo, env), { recursive: true })
    await writeFile(
      join(repo, env, 'all.yaml'),
      objectsFor(env, perEnv)
        .map((o) => writeYaml(o))
        .join('---\n'),
    )
    environments[env] = { manifests: env }
  }
  const registry = ground.registries.plain.host
  await writeFile(
    join(repo, 'berth.yaml'),
    writeYaml({
      apiVersion: 'berth.dev/v1alpha1',
      kind: 'Package',
      artifact: { repository: `oci://${registry}/bench/berth` },
      environments,
    }),
  )

  // The floor: the same rendered files, tarred and pushed by hand.
  const floorDir = join(work, 'floor')
  await mkdir(floorDir)
  await execa(process.execPath, [
    join(root, 'bin/berth.js'),
    'package',
    repo,
    '--version',
    '0.0.0',
    '-o',
    join(work, 'seed.tgz'),
  ])
  await execa('tar', ['xzf', join(work, 'seed.tgz'), '-C', floorDir])

  const env = { ...process.env, BERTH_ORAS: ground.parts.oras, SOURCE_DATE_EPOCH: '1700000000' }
  const berth = join(root, 'bin/berth.js')
  const twoCommands: number[] = []
  const oneCommand: Measured[] = []
  const fluxPush: Measured[] = []
  const floorTimes: number[] = []
  let peakRssKiB = 0
  const run = async (args: readonly string[]): Promise<Measured> => {
    const result = await measured(process.execPath, [berth, ...args], { env })
    peakRssKiB = Math.max(peakRssKiB, result.rssKiB)
    return result
  }
  for (let round = 1; round <= ROUNDS; round++) {
    const version = `1.0.${round}`
    const out = join(work, `berth-${version}.tgz`)
    const packaged = await run(['package', repo, '--version', version, '-o', out])
    const pushed = await run(['push', out, '--version', version, '--repository', `oci://${registry}/bench/berth`, '--plain-http'])
    twoCommands.push(packaged.wall + pushed.wall)
    // What the release workflow runs: one `berth push <dir>` that packages and pushes.
    oneCommand.push(
      await run(['push', repo, '--version', `2.0.${round}`, '--repository', `oci://${registry}/bench/berth-one`, '--plain-http']),
    )
    // The anchor: Flux's own push of the same rendered folder (no rendering, no validation).
    fluxPush.push(
      await measured(flux, [
        'push',
        'artifact',
        `oci://${registry}/bench/flux:${version}`,
        `--path=${floorDir}`,
        '--source=https://example.com/bench',
        `--revision=${version}@sha1:${'0'.repeat(40)}`,
        '--insecure-registry',
      ]),
    )
    floorTimes.push(
      await timed(async () => {
        const out = join(work, `floor-${version}.tgz`)
        await execa('tar', ['czf', out, '-C', floorDir, '.'])
        await execa(
          ground.parts.oras,
          [
            'push',
            '--plain-http',
            `${registry}/bench/floor:${version}`,
            `floor-${version}.tgz:application/vnd.cncf.flux.content.v1.tar+gzip`,
          ],
          { cwd: work },
        )
      }),
    )
  }
  const b = median(twoCommands)
  const f = median(floorTimes)
  const push = { wall: median(oneCommand.map((m) => m.wall)), cpu: median(oneCommand.map((m) => m.cpu)) }
  const anchor = { wall: median(fluxPush.map((m) => m.wall)), cpu: median(fluxPush.map((m) => m.cpu)) }
  process.stdout.write(
    `packager: ${OBJECTS} objects x ${ENVIRONMENTS.length} envs, ${ROUNDS} rounds; `
    + `berth push <dir> p50 ${push.wall.toFixed(0)} ms wall, ${push.cpu.toFixed(0)} ms CPU; `
    + `flux push artifact p50 ${anchor.wall.toFixed(0)} ms wall, ${anchor.cpu.toFixed(0)} ms CPU; `
    + `flux ratio ${(push.wall / anchor.wall).toFixed(2)} (a figure: the release job is measured by bench release; `
    + `CPU ratio ${(push.cpu / anchor.cpu).toFixed(2)}); `
    + `tar czf+oras push p50 ${f.toFixed(0)} ms; berth package+push p50 ${b.toFixed(0)} ms, ratio ${(b / f).toFixed(2)}; `
    + `berth peak RSS ${(peakRssKiB / 1024).toFixed(0)} MiB\n`,
  )
} finally {
  await rm(work, { recursive: true, force: true })
  await stopGround(ground)
}
