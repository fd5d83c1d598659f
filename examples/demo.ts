/**
 * `npm run demo`: berth's whole flow on this machine, against real parts, then everything
 * it started is stopped again.
 *
 * 1. the test ground (built on first use): a registry, etcd, kube-apiserver, the controllers,
 *    the scheduler, kwok's simulated nodes, and a real node (kubelet, containerd, kube-proxy) on a
 *    bridge of its own; needs root
 * 2. developers publish: the example config repository as 1.0.0, then 1.1.0 (a new image tag)
 * 3. berth's image built from the Dockerfile and installed the way an operator would
 *    (`berth install --image … --apply`): the reconciler runs as pods on the real node, with its
 *    ServiceAccount's token and rights
 * 4. Environments: platform tracking `~1`, dev `~1.1`, staging and prod pinned to 1.0.0, prod
 *    gated on staging
 * 5. SREs promote: staging to 1.1.0, then prod from staging; `kubectl get environments`
 *    before and after, prod's pods rolled out for real, and prod's history
 * 6. a failing release: 1.2.0 asks for more CPU than any node has; staging's rollout cannot
 *    complete, berth rolls staging back on its own, and prod is never given 1.2.0
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import { type GroundInfo, startGround, stopGround } from '../test/ground/ground.ts'
import { buildImage, pushImage } from '../test/ground/image.ts'
import { nodeUnsupported } from '../test/ground/node.ts'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const EXAMPLE = join(ROOT, 'examples', 'shop-config')
const NAMESPACE = 'shop'
const bold = (s: string): string => (process.stdout.isTTY && !process.env.NO_COLOR ? `\x1b[1m${s}\x1b[0m` : s)

const step = (title: string): void => {
  process.stdout.write(`\n${bold(`== ${title}`)}\n`)
}
const note = (line: string): void => {
  process.stdout.write(`   ${line}\n`)
}

async function main(): Promise<void> {
  const started = Date.now()
  const work = await mkdtemp(join(tmpdir(), 'berth-demo-'))
  let ground: GroundInfo | undefined
  try {
    const unsupported = await nodeUnsupported()
    if (unsupported) throw new Error(`the demo runs berth as pods on a real node, and ${unsupported}`)
    step(
      '1. the test ground: registry, etcd, kube-apiserver, controllers, scheduler, three simulated nodes and a real '
      + 'one (built on first use, ~20 min; cached after)',
    )
    ground = await startGround({ say: (line) => note(line), node: true })
    const g = ground
    note(`up in ${g.dir}: registry ${g.registries.plain.host}, kube-apiserver ${g.apiserverUrl}`)
    const commit
      = (await execa('git', ['rev-parse', 'HEAD'], { cwd: ROOT, reject: false })).stdout.trim() || '0'.repeat(40)
    // Both releases carry the same creation time, so re-running the demo publishes the same bytes.
    const epoch
      = (await execa('git', ['log', '-1', '--format=%ct'], { cwd: ROOT, reject: false })).stdout.trim() || '1700000000'
    const env = {
      ...process.env,
      KUBECONFIG: g.kubeconfig,
      BERTH_ORAS: g.parts.oras,
      BERTH_KUBECTL: g.parts.kubectl,
      BERTH_HELM: g.parts.helm,
      BERTH_CACHE_DIR: join(work, 'cache'),
      SOURCE_DATE_EPOCH: epoch,
    }
    /** Run and show a command; with `fails`, the demo expects it to fail and says so. */
    const show = async (
      command: 'berth' | 'kubectl',
      args: string[],
      expect: { fails?: boolean } = {},
    ): Promise<void> => {
      process.stdout.write(`\n$ ${command} ${args.join(' ')}\n`)
      const [file, prefix]
        = command === 'berth' ? [process.execPath, [join(ROOT, 'bin', 'berth.js')]] : [g.parts.kubectl, []]
      const result = await execa(file, [...prefix, ...args], {
        env,
        cwd: ROOT,
        stdout: 'inherit',
        stderr: 'inherit',
        reject: !expect.fails,
      })
      if (expect.fails) {
        if (result.exitCode === 0) throw new Error(`${command} ${args.join(' ')} was expected to fail`)
        process.stdout.write(`(exit ${String(result.exitCode)}, as expected)\n`)
      }
    }
    const repository = `oci://${g.registries.plain.host}/acme/shop-config`

    step('2. developers publish 1.0.0, then 1.1.0 (the shop image moves from 2.4.1 to 2.5.0)')
    // The shop's image is fictional: its pods go to the simulated nodes, which the real node's ground taints.
    note('the shop\'s image is made up, so its pods run on the simulated nodes (a toleration added to the example)')
    const first = join(work, 'shop-config-1.0.0')
    await cp(EXAMPLE, first, { recursive: true })
    const firstDeployment = join(first, 'base', 'deployment.yaml')
    await writeFile(
      firstDeployment,
      (await readFile(firstDeployment, 'utf8')).replace(
        '    spec:\n      containers:',
        '    spec:\n      nodeSelector: {type: kwok}\n'
        + '      tolerations: [{key: kwok.x-k8s.io/node, value: fake, effect: NoSchedule}]\n      containers:',
      ),
    )
    const next = join(work, 'shop-config')
    await cp(first, next, { recursive: true })
    const deployment = join(next, 'base', 'deployment.yaml')
    await writeFile(
      deployment,
      (await readFile(deployment, 'utf8')).replace('ghcr.io/acme/shop:2.4.1', 'ghcr.io/acme/shop:2.5.0'),
    )
    for (const [version, dir] of [
      ['1.0.0', first],
      ['1.1.0', next],
    ] as const) {
      await show('berth', [
        'push',
        dir,
        '--version',
        version,
        '--repository',
        repository,
        '--plain-http',
        '--revision',
        `v${version}@sha1:${commit}`,
      ])
    }

    step('3. berth\'s image, built from its Dockerfile (first time: the base images, ~3 min), and installed')
    const version = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version
    const image = `${g.registries.plain.host}/berth:${version}`
    const built = await buildImage({ say: (line) => note(line) })
    note(`built ${built.local}; pushed as ${image}@${await pushImage(built.local, image, true)}`)
    note('berth-apply covers common application kinds; the example also needs its Namespaces and its FeatureFlag CRD:')
    await show('berth', [
      'install',
      '--image',
      image,
      '--allow',
      'namespaces',
      '--allow',
      'customresourcedefinitions.apiextensions.k8s.io',
      '--allow',
      'featureflags.shop.example.com',
      '--apply',
    ])
    await show('kubectl', ['rollout', 'status', 'deployment/berth-reconciler', '-n', 'berth-system', '--timeout=180s'])
    await show('kubectl', ['get', 'pods', '-n', 'berth-system', '-o', 'wide'])

    step('4. the Environments: platform and dev follow ~1, staging and prod are pinned, prod is gated on staging')
    const environments = join(work, 'environments.yaml')
    await writeFile(environments, environmentsYaml(repository))
    process.stdout.write(`\n${await readFile(environments, 'utf8')}`)
    await show('kubectl', ['create', 'namespace', NAMESPACE])
    await show('kubectl', ['apply', '-f', environments])
    await execa(
      g.parts.kubectl,
      ['wait', '--for=condition=Ready', 'environments', '--all', '-n', NAMESPACE, '--timeout=180s'],
      { env },
    ).catch((error: unknown) => {
      throw new Error(
        `the Environments did not become Ready: ${error instanceof Error ? error.message : String(error)}`,
      )
    })
    step('before: dev already runs 1.1.0; staging and prod run 1.0.0')
    await show('kubectl', ['get', 'environments', '-n', NAMESPACE])

    step('5. SREs promote: staging to 1.1.0, then prod to what staging runs')
    await show('berth', ['promote', 'staging', '--to', '1.1.0', '-n', NAMESPACE, '--wait'])
    await show('berth', ['promote', 'prod', '--from', 'staging', '-n', NAMESPACE, '--wait'])
    step('after')
    await show('kubectl', ['get', 'environments', '-n', NAMESPACE])
    await show('kubectl', [
      'get',
      'deployment',
      'shop',
      '-n',
      'shop-prod',
      '-o',
      'jsonpath={.spec.template.spec.containers[0].image}{"\\n"}',
    ])
    await show('kubectl', ['get', 'pods', '-n', 'shop-prod', '-l', 'app.kubernetes.io/name=shop'])
    await show('berth', ['history', 'prod', '-n', NAMESPACE])

    step('6. a failing release: 1.2.0 asks for more CPU than any node has, so its rollout cannot complete')
    const failing = join(work, 'shop-config-1.2.0')
    await cp(next, failing, { recursive: true })
    const failingDeployment = join(failing, 'base', 'deployment.yaml')
    await writeFile(
      failingDeployment,
      (await readFile(failingDeployment, 'utf8'))
        .replace('ghcr.io/acme/shop:2.5.0', 'ghcr.io/acme/shop:2.6.0')
        .replace('cpu: 100m', 'cpu: "64"'),
    )
    await show('berth', [
      'push',
      failing,
      '--version',
      '1.2.0',
      '--repository',
      repository,
      '--plain-http',
      '--revision',
      `v1.2.0@sha1:${commit}`,
    ])
    note('staging has rollback: onFailure and a 20 s timeout; promote --wait exits non-zero:')
    await show('berth', ['promote', 'staging', '--to', '1.2.0', '-n', NAMESPACE, '--wait', '--timeout', '120s'], {
      fails: true,
    })
    note('prod is gated on staging: berth refuses to carry what failed there')
    await show('berth', ['promote', 'prod', '--from', 'staging', '-n', NAMESPACE], { fails: true })
    await show('kubectl', ['get', 'environments', '-n', NAMESPACE])
    await show('berth', ['history', 'staging', '-n', NAMESPACE])

    step(`done in ${Math.round((Date.now() - started) / 1000)} s; stopping everything the demo started`)
  } catch (error: unknown) {
    // What the reconciler said is what explains a failed step.
    if (ground) {
      const args = ['--kubeconfig', ground.kubeconfig, 'logs', '-n', 'berth-system', 'deploy/berth-reconciler']
      const logs = await execa(ground.parts.kubectl, [...args, '--tail=30'], { reject: false })
      process.stderr.write(`\nthe reconciler's last log lines:\n${logs.stdout}\n`)
    }
    throw error
  } finally {
    if (ground) await stopGround(ground)
    await rm(work, { recursive: true, force: true })
  }
}

function environmentsYaml(repository: string): string {
  const one = (name: string, version: string, extra = ''): string => `apiVersion: berth.dev/v1alpha1
kind: Environment
metadata:
  name: ${name}
  namespace: ${NAMESPACE}
spec:
  source:
    repository: ${repository}
    plainHTTP: true
  version: "${version}"
  interval: 1m
  timeout: 2m
${extra}`
  return [
    one('platform', '~1'),
    one('dev', '~1.1'),
    one('staging', '1.0.0').replace('timeout: 2m', 'timeout: 20s')
    + '  rollback: onFailure    # a version that fails health goes back to the last healthy one\n',
    one('prod', '1.0.0', '  promotion:\n    from: staging        # only versions staging has been Ready on\n'),
  ].join('---\n')
}

main().catch((error: unknown) => {
  process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exitCode = 1
})
