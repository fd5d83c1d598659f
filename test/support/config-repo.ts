/** Builds small config repositories for packager tests: a berth.yaml and the files it names. */
import { cp, mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { writeYaml } from '../../shared/yaml-writer.ts'
import { ROOT } from './ground.ts'

/** Write `files` (path → text, or an object serialized as YAML) below `dir`. */
export async function writeTree(dir: string, files: Record<string, string | object>): Promise<string> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true })
    await writeFile(join(dir, path), typeof content === 'string' ? content : writeYaml(content))
  }
  return dir
}

export function berthYaml(repository: string, environments: Record<string, object>): object {
  return { apiVersion: 'berth.dev/v1alpha1', kind: 'Package', artifact: { repository }, environments }
}

export const configMap = (name: string, data: Record<string, string>, namespace?: string): object => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, ...(namespace ? { namespace } : {}) },
  data,
})

/** A repository with one environment of each source kind: plain YAML, kustomize, Helm. */
export async function threeKindRepo(dir: string, repository: string): Promise<string> {
  return await writeTree(dir, {
    'berth.yaml': berthYaml(repository, {
      dev: { manifests: 'plain' },
      staging: { kustomize: 'overlay' },
      prod: { helm: { chart: 'chart', values: ['values-prod.yaml'], namespace: 'prod' } },
    }),
    'plain/a.yaml': `${writeYaml(configMap('alpha', { env: 'dev' }, 'dev'))}---\n${writeYaml(configMap('beta', { env: 'dev' }, 'dev'))}`,
    'plain/nested/b.yml': configMap('gamma', { nested: 'yes' }, 'dev'),
    'overlay/kustomization.yaml': {
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      namespace: 'staging',
      resources: ['cm.yaml'],
    },
    'overlay/cm.yaml': configMap('settings', { env: 'staging' }),
    'chart/Chart.yaml': { apiVersion: 'v2', name: 'demo', version: '0.1.0' },
    'chart/values.yaml': { greeting: 'hello', replicas: 1 },
    'chart/templates/cm.yaml':
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\n  namespace: {{ .Release.Namespace }}\ndata:\n  greeting: {{ .Values.greeting | quote }}\n  replicas: {{ .Values.replicas | quote }}\n',
    'values-prod.yaml': { greeting: 'hello prod', replicas: 3 },
  })
}

/** A copy of the shipped example application in `dir`. */
export async function exampleRepo(dir: string): Promise<string> {
  await cp(join(ROOT, 'examples', 'shop-config'), dir, { recursive: true })
  return dir
}

/** A one-container Deployment named `name` (app label alike); `spec` adds or overrides fields. */
/** A Deployment asking more CPU than any simulated node has: never scheduled, so never available (fails health). */
export const unschedulable = (name: string): object =>
  deployment(name, {
    replicas: 1,
    template: {
      metadata: { labels: { app: name } },
      spec: { containers: [{ name: 'a', image: 'example.com/a:1', resources: { requests: { cpu: '64' } } }] },
    },
  })

export const deployment = (name: string, spec: Record<string, unknown> = {}): object => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name },
  spec: {
    selector: { matchLabels: { app: name } },
    template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'a', image: 'example.com/a:1' }] } },
    ...spec,
  },
})

/**
 * A CRD for kind `kind` of `group` whose objects report health in status (a status subresource the test writes as
 * their controller would), its schema open.
 */
export function statusCrd(group: string, kind: string): { metadata: { name: string } } & Record<string, unknown> {
  const plural = `${kind.toLowerCase()}s`
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope: 'Namespaced',
      names: { plural, singular: kind.toLowerCase(), kind },
      versions: [{
        name: 'v1',
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: { openAPIV3Schema: { 'type': 'object', 'x-kubernetes-preserve-unknown-fields': true } },
      }],
    },
  }
}
