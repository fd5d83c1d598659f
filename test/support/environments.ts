/** Helpers for reconciler tests: the CRD, publishing small artifacts, Environment objects. */
import { mkdtemp } from 'node:fs/promises'
import { join } from 'node:path'
import { publish } from '../../packager/publish.ts'
import { API_VERSION, type Condition, type Environment, environmentRef, KIND } from '../../api/environment.ts'
import { installEnvironmentCrd } from '../../install/crd.ts'
import { type Outcome, reconcileEnvironment } from '../../reconciler/pass/reconcile.ts'
import type { FileGround } from './ground.ts'
import type { Kube } from '../../shared/kube.ts'
import { berthYaml, writeTree } from './config-repo.ts'

export async function installCrd(kube: Kube): Promise<void> {
  await installEnvironmentCrd(kube)
}

type EnvRef = { apiVersion: string; kind: string; metadata: { name: string; namespace: string } }

/** Running reconcile passes by hand in a test file's namespace, and reading the result. */
export function passes(
  g: FileGround,
  kube: () => Kube = g.kube,
  now?: () => Date,
): {
  envRef: (name: string) => EnvRef
  pass: (name: string) => Promise<Environment>
  run: (name: string) => Promise<{ env: Environment; outcome: Outcome }>
  ready: (env: Environment) => Condition | undefined
} {
  const envRef = (name: string): EnvRef => environmentRef(g.namespace, name)
  const run = async (name: string): Promise<{ env: Environment; outcome: Outcome }> => {
    const outcome = await reconcileEnvironment(
      { kube: kube(), cacheDir: join(g.scratch(), 'cache'), ...(now ? { now } : {}) },
      { namespace: g.namespace, name },
    )
    const env = await g.kube().get<Environment>(envRef(name))
    if (!env) throw new Error(`Environment ${name} is gone`)
    return { env, outcome }
  }
  return {
    envRef,
    run,
    // Tests that read the verdict from status; `run` also gives what the queue is asked to do next.
    pass: async (name) => (await run(name)).env,
    ready: (env) => env.status?.conditions?.find((c) => c.type === 'Ready'),
  }
}

/** Publish `version` of a one-environment (`app`) artifact made of `objects` to a plain-HTTP registry. */
export async function publishApp(
  dir: string,
  repository: string,
  version: string,
  objects: Record<string, object>,
  allowSecrets = false,
): Promise<string> {
  // A folder of its own per call: two artifacts published from one scratch dir never mix files.
  const repo = await mkdtemp(join(dir, `src-${version}-`))
  const files: Record<string, object> = {
    'berth.yaml': berthYaml(`oci://${repository}`, { app: { manifests: 'app' } }),
  }
  for (const [name, object] of Object.entries(objects)) files[`app/${name}.yaml`] = object
  await writeTree(repo, files)
  const result = await publish({
    input: repo,
    version,
    access: { plainHttp: true },
    source: 'https://example.com/app',
    revision: `v${version}@sha1:${'0'.repeat(40)}`,
    ...(allowSecrets ? { allowSecrets } : {}),
  })
  return result.digest
}

export function environment(namespace: string, name: string, spec: Record<string, unknown>): Environment {
  return { apiVersion: API_VERSION, kind: KIND, metadata: { name, namespace }, spec: { path: 'app', ...spec } }
}

/** Create (or update) Environment `name` in the file's namespace, pulling `repository` (host/path) over plain HTTP. */
export async function applyEnvironment(
  g: FileGround,
  name: string,
  repository: string,
  spec: Record<string, unknown>,
): Promise<void> {
  await g
    .kube()
    .apply(environment(g.namespace, name, { source: { repository: `oci://${repository}`, plainHTTP: true }, ...spec }))
}

/** A clock for passes that a test moves forward instead of waiting: `later(ms)` is time passing. */
export function testClock(): { now: () => Date; later: (ms: number) => void } {
  let offset = 0
  return { now: () => new Date(Date.now() + offset), later: (ms) => (offset += ms) }
}

export type RecordedEvent = { type: string; reason: string; message: string }

/** The Events recorded about Environment `name` in the file's namespace, of one reason when given. */
export async function eventsOf(g: FileGround, name: string, reason?: string): Promise<RecordedEvent[]> {
  const events = await g.kube().list<RecordedEvent & { involvedObject: { name: string } }>('v1', 'Event', {
    namespace: g.namespace,
  })
  return events.filter((e) => e.involvedObject.name === name && (reason === undefined || e.reason === reason))
}

/**
 * A namespace of Environment `name`'s own (`<file namespace>-<name>`), created, for its objects: Environments
 * of one test file that publish the same artifact must not claim the same objects (one object, one owner).
 */
export async function ownNamespace(g: FileGround, name: string): Promise<string> {
  const namespace = `${g.namespace}-${name}`
  await g.kube().apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } })
  return namespace
}
