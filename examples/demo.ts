/**
 * `npm run demo`: berth's whole flow on this machine, against real parts, then everything
 * it started is stopped again.
 *
 * 1. two clusters (test grounds, built on first use): eu-1 with a real node (kubelet, containerd,
 *    kube-proxy; needs root) beside kwok's simulated nodes, and eu-2 with simulated nodes only;
 *    one registry
 * 2. developers publish: the example config repository as 1.0.0, then 1.1.0 (a new image tag)
 * 3. berth's image built from the Dockerfile and installed in eu-1 the way an operator would
 *    (`berth install --image … --apply`): the reconciler runs as pods on the real node, with its
 *    ServiceAccount's token and rights; in eu-2 it runs as a process with its ServiceAccount's
 *    token (one real node per machine)
 * 4. Environments: in eu-1 platform tracking `~1`, dev `~1.1`, staging pinned to 1.0.0 and
 *    attesting what runs healthy; in eu-2 platform and prod, prod gated on staging's attestation
 * 5. SREs promote: staging to 1.1.0, then prod from what eu-1/shop/staging attested; one status
 *    table across both clusters before and after, prod's pods rolled out for real, its history
 * 6. a failing release: 1.2.0 asks for more CPU than any node has; staging's rollout cannot
 *    complete, berth rolls staging back on its own, never attests it, and prod is not given it
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import { type GroundInfo, startGround, stopGround, writeContexts, writeKubeconfig } from '../test/ground/ground.ts'
import { freePort } from '../test/ground/processes.ts'
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
  let other: GroundInfo | undefined
  let reconciler: ChildProcess | undefined
  let logs = ''
  try {
    const unsupported = await nodeUnsupported()
    if (unsupported) throw new Error(`the demo runs berth as pods on a real node, and ${unsupported}`)
    step(
      '1. two clusters: eu-1 (three simulated nodes and a real one) and eu-2 (three simulated nodes), one registry '
      + '(built on first use, ~20 min; cached after)',
    )
    ;[ground, other] = await Promise.all([
      startGround({ say: (line) => note(line), node: true }),
      startGround({ say: () => undefined }),
    ])
    const g = ground
    const eu2 = other
    note(`up in ${g.dir}: registry ${g.registries.plain.host}, eu-1's kube-apiserver ${g.apiserverUrl}`)
    note(`and in ${eu2.dir}: eu-2's kube-apiserver ${eu2.apiserverUrl}`)
    // One kubeconfig, a context per cluster, as an SRE has: --context eu-2 picks the second.
    const kubeconfig = join(work, 'kubeconfig')
    await writeContexts(kubeconfig, { 'eu-1': g.kubeconfig, 'eu-2': eu2.kubeconfig })
    const commit
      = (await execa('git', ['rev-parse', 'HEAD'], { cwd: ROOT, reject: false })).stdout.trim() || '0'.repeat(40)
    // Both releases carry the same creation time, so re-running the demo publishes the same bytes.
    const epoch
      = (await execa('git', ['log', '-1', '--format=%ct'], { cwd: ROOT, reject: false })).stdout.trim() || '1700000000'
    const env = {
      ...process.env,
      KUBECONFIG: kubeconfig,
      BERTH_COSIGN_PASSWORD: 'demo',
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
    note('berth-apply covers common application kinds; the example also needs its Namespaces, its FeatureFlag CRD and')
    note('(berth-apply writes no Secret unless allowed) its SOPS-encrypted Secret:')
    const allow = [
      '--allow',
      'namespaces',
      '--allow',
      'secrets',
      '--allow',
      'customresourcedefinitions.apiextensions.k8s.io',
      '--allow',
      'featureflags.shop.example.com',
    ]
    await show('berth', ['install', '--image', image, '--cluster-name', 'eu-1', ...allow, '--apply'])
    await show('kubectl', ['rollout', 'status', 'deployment/berth-reconciler', '-n', 'berth-system', '--timeout=180s'])
    await show('kubectl', ['get', 'pods', '-n', 'berth-system', '-o', 'wide'])
    note('eu-2 has no real node here (one per machine): its reconciler runs as a process, as its ServiceAccount')
    await show('berth', ['install', '--context', 'eu-2', '--cluster-name', 'eu-2', ...allow, '--apply'])
    const token = (
      await execa(eu2.parts.kubectl, ['--kubeconfig', eu2.kubeconfig, 'create', 'token', 'berth-reconciler', '-n', 'berth-system'])
    ).stdout.trim()
    const saKubeconfig = join(work, 'eu-2-reconciler.kubeconfig')
    await writeKubeconfig(saKubeconfig, {
      server: eu2.apiserverUrl,
      ca: eu2.ca.cert,
      token,
      user: 'berth-reconciler',
      context: 'berth-reconciler',
    })
    reconciler = spawn(
      process.execPath,
      [
        join(ROOT, 'bin', 'berth.js'),
        'reconciler',
        '--leader-elect',
        '--cluster-name',
        'eu-2',
        '--kubeconfig',
        saKubeconfig,
        '--metrics-address',
        `127.0.0.1:${await freePort()}`,
        '--cache-dir',
        join(work, 'reconciler-cache'),
      ],
      { env: { ...env, POD_NAMESPACE: 'berth-system' }, stdio: ['ignore', 'ignore', 'pipe'] },
    )
    reconciler.stderr?.setEncoding('utf8').on('data', (chunk: string) => (logs += chunk))

    step('4. the Environments: platform and dev follow ~1, staging is pinned and attests; prod in eu-2 is gated on it')
    note('staging signs what ran healthy with a key of eu-1\'s own; eu-2 trusts its public half, nothing else of eu-1')
    await show('berth', ['keygen', '--output-dir', work])
    await show('kubectl', ['create', 'namespace', NAMESPACE])
    await show('kubectl', ['create', 'secret', 'generic', 'attest', '-n', NAMESPACE, `--from-file=${join(work, 'cosign.key')}`,
      '--from-literal=cosign.password=demo', '--from-literal=.dockerconfigjson={"auths":{}}'])
    await show('kubectl', ['--context', 'eu-2', 'create', 'namespace', NAMESPACE])
    await show('kubectl', ['--context', 'eu-2', 'create', 'secret', 'generic', 'staging-keys', '-n', NAMESPACE,
      `--from-file=${join(work, 'cosign.pub')}`])
    note('the config repository holds one SOPS-encrypted Secret (db-credentials); each cluster gets the age key')
    for (const context of ['eu-1', 'eu-2']) {
      await show('kubectl', ['--context', context, 'create', 'secret', 'generic', 'sops-age', '-n', NAMESPACE,
        `--from-file=demo.agekey=${join(ROOT, 'examples', 'demo.agekey')}`])
    }
    const [eu1Envs, eu2Envs] = [join(work, 'eu-1.yaml'), join(work, 'eu-2.yaml')]
    await writeFile(eu1Envs, environmentsYaml(repository, 'eu-1'))
    await writeFile(eu2Envs, environmentsYaml(repository, 'eu-2'))
    process.stdout.write(`\n# eu-1\n${await readFile(eu1Envs, 'utf8')}\n# eu-2\n${await readFile(eu2Envs, 'utf8')}`)
    await show('kubectl', ['apply', '-f', eu1Envs])
    await show('kubectl', ['--context', 'eu-2', 'apply', '-f', eu2Envs])
    for (const context of ['eu-1', 'eu-2']) {
      await execa(
        g.parts.kubectl,
        ['--context', context, 'wait', '--for=condition=Ready', 'environments', '--all', '-n', NAMESPACE, '--timeout=180s'],
        { env },
      ).catch(async (error: unknown) => {
        // Say why: each Environment's Ready reason and message, as berth status shows them.
        const why = await execa(process.execPath, [join(ROOT, 'bin', 'berth.js'), 'status', '--context', context, '-n', NAMESPACE], {
          env,
          reject: false,
        })
        throw new Error(
          `the Environments of ${context} did not become Ready: ${error instanceof Error ? error.message : String(error)}\n`
          + `${why.stdout}${why.stderr}`,
        )
      })
    }
    step('before: dev already runs 1.1.0; staging and prod run 1.0.0')
    await show('berth', ['status', '--all-contexts', '-n', NAMESPACE])

    step('5. SREs promote: staging to 1.1.0, then prod to what eu-1/shop/staging attested healthy')
    await show('berth', ['promote', 'staging', '--to', '1.1.0', '-n', NAMESPACE, '--wait'])
    await show('berth', ['attestations', repository, '1.1.0', '--plain-http', '--key', join(work, 'cosign.pub')])
    await show('berth', ['promote', 'prod', '--context', 'eu-2', '--from', 'eu-1/shop/staging', '-n', NAMESPACE, '--wait'])
    step('after')
    await show('berth', ['status', '--all-contexts', '-n', NAMESPACE])
    await show('kubectl', [
      '--context',
      'eu-2',
      'get',
      'deployment',
      'shop',
      '-n',
      'shop-prod',
      '-o',
      'jsonpath={.spec.template.spec.containers[0].image}{"\\n"}',
    ])
    await show('kubectl', ['--context', 'eu-2', 'get', 'pods', '-n', 'shop-prod', '-l', 'app.kubernetes.io/name=shop'])
    await show('berth', ['history', 'prod', '--context', 'eu-2', '-n', NAMESPACE])

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
    note('staging never attested 1.2.0 healthy: prod in eu-2 has nothing newer to take')
    await show('berth', ['promote', 'prod', '--context', 'eu-2', '--from', 'eu-1/shop/staging', '-n', NAMESPACE], {
      fails: true,
    })
    await show('berth', ['status', '--all-contexts', '-n', NAMESPACE])
    await show('berth', ['history', 'staging', '-n', NAMESPACE])

    step(`done in ${Math.round((Date.now() - started) / 1000)} s; stopping everything the demo started`)
  } catch (error: unknown) {
    // What the reconcilers said is what explains a failed step.
    if (ground) {
      const args = ['--kubeconfig', ground.kubeconfig, 'logs', '-n', 'berth-system', 'deploy/berth-reconciler']
      const pods = await execa(ground.parts.kubectl, [...args, '--tail=30'], { reject: false })
      process.stderr.write(`\neu-1's reconciler, last log lines:\n${pods.stdout}\n`)
    }
    if (logs) process.stderr.write(`\neu-2's reconciler, last log lines:\n${logs.split('\n').slice(-30).join('\n')}\n`)
    throw error
  } finally {
    if (reconciler && reconciler.exitCode === null) {
      const exited = new Promise((resolve) => reconciler?.once('exit', resolve))
      reconciler.kill('SIGTERM')
      await exited
    }
    if (other) await stopGround(other)
    if (ground) await stopGround(ground)
    await rm(work, { recursive: true, force: true })
  }
}

/**
 * What the apps' Environments add: they use the FeatureFlag kind platform's CRD brings (a new version lands once
 * platform is Ready), and one SOPS-encrypted Secret, decrypted with the cluster's age key.
 */
const APP_SPEC = '  dependsOn: [{name: platform}]   # the FeatureFlag CRD first\n'
  + '  decryption: {provider: sops, secretRef: {name: sops-age}}   # db-credentials, decrypted in the cluster\n'

function environmentsYaml(repository: string, cluster: 'eu-1' | 'eu-2'): string {
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
  if (cluster === 'eu-2') {
    return [
      one('platform', '~1'),
      one(
        'prod',
        '1.0.0',
        APP_SPEC
        + '  promotion:              # only digests eu-1/shop/staging attested healthy, for 10s at least\n'
        + '    attested: {environment: eu-1/shop/staging, secretRef: {name: staging-keys}}\n'
        + '    soak: 10s\n',
      ),
    ].join('---\n')
  }
  return [
    one('platform', '~1'),
    one('dev', '~1.1', APP_SPEC),
    one('staging', '1.0.0', APP_SPEC).replace('timeout: 2m', 'timeout: 20s')
    + '  rollback: onFailure    # a version that fails health goes back to the last healthy one\n'
    + '  attest: {secretRef: {name: attest}}   # sign and push a health attestation for what runs healthy\n',
  ].join('---\n')
}

main().catch((error: unknown) => {
  process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exitCode = 1
})
