/** Helpers for reconciler tests: the CRD, publishing small artifacts, Environment objects. */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { publish } from '../../packager/publish.ts'
import { API_VERSION, type Environment, environmentCrd, KIND } from '../../reconciler/api.ts'
import type { Kube } from '../../shared/kube.ts'
import { berthYaml, writeTree } from './config-repo.ts'

export async function installCrd(kube: Kube): Promise<void> {
  const crd = environmentCrd()
  await kube.apply(crd)
  await kube.waitFor<{ status?: { conditions?: Array<{ type: string; status: string }> } }>(
    { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: crd.metadata.name } },
    (o) => o?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false,
    30_000,
  )
  kube.forgetDiscovery()
}

/** Publish `version` of a one-environment (`app`) artifact made of `objects` to a plain-HTTP registry. */
export async function publishApp(dir: string, repository: string, version: string, objects: Record<string, object>): Promise<string> {
  const repo = join(dir, `src-${version}`)
  await mkdir(repo, { recursive: true })
  const files: Record<string, object> = { 'berth.yaml': berthYaml(`oci://${repository}`, { app: { manifests: 'app' } }) }
  for (const [name, object] of Object.entries(objects)) files[`app/${name}.yaml`] = object
  await writeTree(repo, files)
  const result = await publish({ input: repo, version, access: { plainHttp: true }, source: 'https://example.com/app', revision: `v${version}@sha1:${'0'.repeat(40)}` })
  return result.digest
}

export function environment(namespace: string, name: string, spec: Record<string, unknown>): Environment {
  return { apiVersion: API_VERSION, kind: KIND, metadata: { name, namespace }, spec: { path: 'app', ...spec } }
}
