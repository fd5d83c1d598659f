/**
 * `npm run testground [-- build|up|down|status]`
 *   build (default)  build what is missing and say where each part is
 *   up [--no-node]   start a ground that stays up for people, with a real node where the machine can run one;
 *                    prints how to use it
 *   down             stop the ground `up` started
 *   run              start a ground in the foreground; prints its ground.json path, stops on
 *                    SIGINT/SIGTERM (and is reaped by its guardian if killed outright)
 */
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BerthError } from '../../shared/errors.ts'
import { firstSignal } from '../../shared/signals.ts'
import { ensureParts } from './build.ts'
import { type GroundInfo, groundPointer, runningGround, startGround, stopGround } from './ground.ts'
import { nodeUnsupported } from './node.ts'
import { cacheDir, GO_PARTS } from './parts.ts'

const say = (line: string): void => {
  process.stderr.write(`testground: ${line}\n`)
}

async function main(command: string): Promise<void> {
  switch (command) {
    case 'build': {
      const parts = await ensureParts(say, { bases: true })
      const versions = Object.fromEntries(GO_PARTS.map((p) => [p.name, p.version]))
      process.stdout.write(
        [
          `oras            ${versions.oras}  ${parts.oras}`,
          `helm            ${versions.helm}  ${parts.helm}`,
          `actionlint      ${versions.actionlint}  ${parts.actionlint}`,
          `etcd            ${versions.etcd}  ${parts.etcd}`,
          `kube-apiserver  ${versions['kube-apiserver']}  ${parts.kubeApiserver}`,
          `docker-registry (apt)  ${parts.registry}`,
          `prometheus      (apt)  ${parts.prometheus}`,
          `pushgateway     (apt)  ${parts.pushgateway}`,
          `kubectl         (machine)  ${parts.kubectl}`,
          '',
        ].join('\n'),
      )
      return
    }
    case 'up': {
      const running = await runningGround()
      if (running) {
        printUsage(running)
        say('already up (npm run testground -- down stops it)')
        return
      }
      // A real node where the machine can run one (root): `berth install --image … --apply` then runs berth.
      const unsupported = process.argv.includes('--no-node') ? 'asked for none' : await nodeUnsupported()
      if (unsupported) say(`no real node (${unsupported}): pods run on simulated nodes only`)
      const info = await startGround({ say, persistent: true, node: !unsupported })
      await mkdir(join(cacheDir(), 'run'), { recursive: true })
      await writeFile(groundPointer(), join(info.dir, 'ground.json'))
      printUsage(info)
      return
    }
    case 'down': {
      const running = await runningGround()
      if (!running) {
        say('no ground is up')
        return
      }
      await stopGround(running)
      await rm(groundPointer(), { force: true })
      say('stopped')
      return
    }
    case 'run': {
      // Listen before anything starts: a signal that arrives mid-start still stops cleanly.
      const signalled = firstSignal()
      const info = await startGround({ say })
      process.stdout.write(`${join(info.dir, 'ground.json')}\n`)
      // Every server is unref'd; this timer is what keeps the process waiting for a signal.
      const keepAlive = setInterval(() => undefined, 60_000)
      const signal = await signalled
      clearInterval(keepAlive)
      say(`${signal}: stopping`)
      await stopGround(info)
      return
    }
    default:
      throw new BerthError('Usage', `unknown command "${command}": use build, up, down or run`)
  }
}

function printUsage(info: GroundInfo): void {
  const { plain, secure } = info.registries
  process.stdout.write(
    [
      `export KUBECONFIG=${info.kubeconfig}`,
      `export BERTH_REGISTRY=${plain.host}            # plain HTTP: oras … --plain-http`,
      `export BERTH_REGISTRY_TLS=${secure.host}        # TLS + basic auth: oras … --ca-file ${info.ca.cert}`,
      `# user ${secure.username ?? ''}; password in ${join(info.dir, 'ground.json')}`,
      `export BERTH_PROMETHEUS=http://${info.metrics.prometheus}   # metric checks query it (spec.health.metrics)`,
      `export BERTH_PUSHGATEWAY=http://${info.metrics.pushgateway}  # push values it scrapes: curl --data-binary @- …/metrics/job/<job>`,
      `export PATH=${join(info.parts.oras, '..')}:$PATH`,
      '',
    ].join('\n'),
  )
}

try {
  await main(process.argv[2] ?? 'build')
} catch (error: unknown) {
  say(error instanceof Error ? error.message : String(error))
  process.exitCode = error instanceof BerthError ? error.exitCode : 1
}
