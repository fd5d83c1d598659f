/**
 * reconciler: an artifact of 100 objects. (1) Promotion latency: time from editing
 * spec.version to Ready (observed generation, applied version, Ready=True) with a real
 * `berth reconciler` process, p50 over 10 promotions. (2) Apply: berth's apply of the 100
 * objects against `kubectl apply --server-side -f <dir>` of the same objects, same apiserver,
 * five rounds each, alternating. (3) A periodic pass with nothing drifted (reads and dry runs,
 * no write) against kubectl re-applying the same unchanged objects. Prints one line `reconciler: …`.
 */
import type { ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { writeYaml } from '../shared/yaml-writer.ts'
import { publish } from '../packager/publish.ts'
import { API_VERSION, type Environment, KIND } from '../api/environment.ts'
import { applyObjects } from '../reconciler/apply/apply.ts'
import { installEnvironmentCrd } from '../install/crd.ts'
import { reconcileEnvironment } from '../reconciler/pass/reconcile.ts'
import { Kube, loadKubeConfig } from '../shared/kube.ts'
import { type Located } from '../shared/manifests.ts'
import { startGround, stopGround } from '../test/ground/ground.ts'
import { startReconciler } from '../test/support/reconciler-process.ts'
import { median, timed } from './support/stats.ts'

const OBJECTS = 100
const PROMOTIONS = 10
const APPLY_ROUNDS = 5

function objects(namespace: string, version: number): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = []
  for (let i = 0; i < OBJECTS; i++) {
    const name = `obj-${String(i).padStart(3, '0')}`
    if (i % 4 === 0)
      out.push({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name, namespace },
        spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }] },
      })
    else if (i % 4 === 1)
      out.push({
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name, namespace, labels: { release: String(version) } },
      })
    else if (i % 4 === 2)
      out.push({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name, namespace },
        rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }],
      })
    else
      out.push({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name, namespace },
        data: { release: String(version), value: `v-${i}-${version}` },
      })
  }
  return out
}

process.env.SOURCE_DATE_EPOCH = '1700000000'
const ground = await startGround({ say: (line) => process.stderr.write(`bench: ${line}\n`) })
process.env.BERTH_ORAS = ground.parts.oras
const work = await mkdtemp(join(tmpdir(), 'berth-bench-'))
let reconciler: ChildProcess | undefined
try {
  const kube = new Kube(loadKubeConfig({ kubeconfig: ground.kubeconfig }))
  const namespace = 'bench'
  await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } })
  await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench-kubectl' } })
  await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench-berth' } })
  await installEnvironmentCrd(kube)

  // Releases 1.0.0 … 1.0.10 of the same 100 objects, each with other data.
  const repository = `${ground.registries.plain.host}/bench/app`
  for (let v = 0; v <= PROMOTIONS; v++) {
    const dir = join(work, `src-${v}`)
    await mkdir(join(dir, 'app'), { recursive: true })
    await writeFile(
      join(dir, 'berth.yaml'),
      writeYaml({
        apiVersion: 'berth.dev/v1alpha1',
        kind: 'Package',
        artifact: { repository: `oci://${repository}` },
        environments: { app: { manifests: 'app' } },
      }),
    )
    await writeFile(
      join(dir, 'app', 'all.yaml'),
      objects(namespace, v)
        .map((o) => writeYaml(o))
        .join('---\n'),
    )
    await publish({
      input: dir,
      version: `1.0.${v}`,
      access: { plainHttp: true },
      source: 'https://example.com/bench',
      revision: `v1.0.${v}@sha1:${'0'.repeat(40)}`,
    })
  }

  // (1) Promotions through a real reconciler process.
  const started = startReconciler(ground.kubeconfig, join(work, 'cache'))
  reconciler = started.child
  while (!started.logs().includes('watching Environments')) await new Promise((r) => setTimeout(r, 50))
  const ref = { apiVersion: API_VERSION, kind: KIND, metadata: { name: 'app', namespace } }
  const readyAt = async (version: string, generation: number): Promise<void> => {
    for (;;) {
      const env = await kube.get<Environment>(ref)
      const ready = env?.status?.conditions?.find((c) => c.type === 'Ready')
      if (
        env?.status?.observedGeneration === generation
        && env.status.lastAppliedVersion === version
        && ready?.status === 'True'
      )
        return
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  await kube.apply({
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: 'app', namespace },
    spec: { source: { repository: `oci://${repository}`, plainHTTP: true }, version: '1.0.0', interval: '1h' },
  })
  await readyAt('1.0.0', 1)
  const promotions: number[] = []
  for (let v = 1; v <= PROMOTIONS; v++) {
    promotions.push(
      await timed(async () => {
        const patched = await kube.mergePatch<{ metadata: { generation: number } }>(ref, {
          spec: { version: `1.0.${v}` },
        })
        await readyAt(`1.0.${v}`, patched.metadata.generation)
      }),
    )
  }

  // (2) Apply of the same 100 objects: berth in-process vs kubectl --server-side.
  const kubectlDir = join(work, 'kubectl')
  await mkdir(kubectlDir)
  const berthTimes: number[] = []
  const kubectlTimes: number[] = []
  for (let round = 1; round <= APPLY_ROUNDS; round++) {
    const located: Located[] = objects('bench-berth', 100 + round).map((object, i) => ({
      object: object as Located['object'],
      source: `obj#${i}`,
    }))
    berthTimes.push(
      await timed(() => applyObjects(kube, located, { name: 'bench', namespace: 'bench-berth' }, 'bench')),
    )
    await writeFile(
      join(kubectlDir, 'all.yaml'),
      objects('bench-kubectl', 100 + round)
        .map((o) => writeYaml(o))
        .join('---\n'),
    )
    kubectlTimes.push(
      await timed(() =>
        execa(ground.parts.kubectl, [
          '--kubeconfig',
          ground.kubeconfig,
          'apply',
          '--server-side',
          '--field-manager',
          'bench',
          '-f',
          kubectlDir,
        ]),
      ),
    )
  }
  // (3) A periodic pass with nothing drifted (a read and a dry run per object, no write) against
  // kubectl re-applying the same unchanged 100 objects.
  reconciler.kill('SIGTERM')
  await new Promise((r) => reconciler?.once('exit', r))
  const periodic: number[] = []
  const reapply: number[] = []
  for (let round = 1; round <= APPLY_ROUNDS; round++) {
    periodic.push(
      await timed(() => reconcileEnvironment({ kube, cacheDir: join(work, 'cache') }, { namespace, name: 'app' })),
    )
    reapply.push(
      await timed(() =>
        execa(ground.parts.kubectl, [
          '--kubeconfig',
          ground.kubeconfig,
          'apply',
          '--server-side',
          '--field-manager',
          'bench',
          '-f',
          kubectlDir,
        ]),
      ),
    )
  }
  const b = median(berthTimes)
  const k = median(kubectlTimes)
  const p50 = median(promotions)
  process.stdout.write(
    `reconciler: ${OBJECTS} objects; promote→Ready p50 ${p50.toFixed(0)} ms over ${PROMOTIONS} (target < 2000 ms, max ${Math.max(...promotions).toFixed(0)} ms); `
    + `berth apply p50 ${b.toFixed(0)} ms; kubectl apply --server-side p50 ${k.toFixed(0)} ms; ratio ${(b / k).toFixed(2)} (target <= 0.6); `
    + `periodic pass in sync p50 ${median(periodic).toFixed(0)} ms; kubectl re-apply p50 ${median(reapply).toFixed(0)} ms; ratio ${(median(periodic) / median(reapply)).toFixed(2)}\n`,
  )
} finally {
  reconciler?.kill('SIGTERM')
  await rm(work, { recursive: true, force: true })
  await stopGround(ground)
}
