/**
 * Where the Kubernetes API is and how to authenticate to it, read as kubectl reads it:
 * `--kubeconfig`, else `$KUBECONFIG` (several files merged, the first to name a thing wins),
 * else `~/.kube/config`, else the in-cluster ServiceAccount.
 *
 * Why not @kubernetes/client-node's KubeConfig: loading it loads the whole generated API client
 * (about 85 MiB of resident memory, a third of the reconciler's budget at 1,000 Environments) for
 * what is a YAML file and a few TLS options. berth reads certificates, tokens, token files and
 * basic auth itself; a user authenticated by an `exec` plugin, a legacy `auth-provider` or
 * through a proxy (a workstation with cloud credentials) gets client-node's KubeConfig, loaded
 * only then, so every kubeconfig kubectl accepts still works.
 */
import { existsSync, readFileSync, statSync } from 'node:fs'
import type { OutgoingHttpHeaders } from 'node:http'
import type { RequestOptions as HttpsOptions } from 'node:https'
import { homedir } from 'node:os'
import { delimiter, dirname, isAbsolute, join } from 'node:path'
import { load } from 'js-yaml'
import { messageOf, RemoteError, UsageError } from './errors.ts'

export type KubeTarget = {
  /** Path of a kubeconfig; default `$KUBECONFIG`, `~/.kube/config`, or in-cluster. */
  kubeconfig?: string
  /** Context to use instead of the kubeconfig's current one. */
  context?: string
  /** Act as this user (kubectl's --as); overrides the kubeconfig user's `as`. */
  as?: string
  /** Act with these groups (kubectl's --as-group, repeatable); overrides the kubeconfig user's `as-groups`. */
  asGroups?: readonly string[]
}

/** The API server of the chosen context and the credentials requests to it carry. */
export type KubeAccess = {
  readonly server: string
  /** The context's namespace, if it names one (the in-cluster one: the pod's). */
  readonly namespace: string | undefined
  /** Add the CA, client certificate and Authorization header to a request's options. */
  authorize: (options: HttpsOptions) => Promise<void>
  /** Whom requests act as (Impersonate-User / Impersonate-Group), when the user or the kubeconfig says. */
  readonly impersonate?: { user?: string; groups?: readonly string[] }
}

type Named<T> = { name: string } & T
type Cluster = {
  'server'?: string
  'certificate-authority'?: string
  'certificate-authority-data'?: string
  'insecure-skip-tls-verify'?: boolean
  'tls-server-name'?: string
  'proxy-url'?: string
}
type User = {
  'client-certificate'?: string
  'client-certificate-data'?: string
  'client-key'?: string
  'client-key-data'?: string
  'token'?: string
  'tokenFile'?: string
  'username'?: string
  'password'?: string
  'exec'?: unknown
  'auth-provider'?: unknown
  'as'?: string
  'as-groups'?: string[]
}
type Context = { cluster?: string; user?: string; namespace?: string }
/** One kubeconfig file's entries, with the folder its relative paths start from. */
type Entry<T> = { value: T; dir: string }

const SERVICE_ACCOUNT = '/var/run/secrets/kubernetes.io/serviceaccount'
/** Bound ServiceAccount tokens rotate (the kubelet rewrites the file); read it again after this long. */
const TOKEN_REREAD_MS = 60_000

/** Load a kubeconfig as kubectl would. */
export function loadKubeConfig(target: KubeTarget = {}): KubeAccess {
  const files = target.kubeconfig ? [target.kubeconfig] : defaultFiles()
  if (files.length === 0) {
    if (process.env.KUBERNETES_SERVICE_HOST && !target.context) return { ...inCluster(), ...impersonation(target, {}) }
    throw noCluster()
  }
  const merged = merge(files)
  const name = target.context ?? merged.current
  if (target.context && !merged.contexts.has(target.context)) {
    throw new UsageError(
      'UnknownContext',
      `context "${target.context}" is not in the kubeconfig; \`kubectl config get-contexts\` lists them`,
    )
  }
  const context = name ? merged.contexts.get(name)?.value : undefined
  const cluster = context?.cluster ? merged.clusters.get(context.cluster) : undefined
  if (!context || !cluster?.value.server) throw noCluster()
  const user = context.user ? merged.users.get(context.user) : undefined
  const delegated = Boolean(user?.value.exec ?? user?.value['auth-provider'] ?? cluster.value['proxy-url'])
  return {
    server: cluster.value.server,
    namespace: context.namespace,
    authorize: delegated ? clientNode(target, files, name ?? '') : fromFiles(cluster, user ?? { value: {}, dir: '' }),
    ...impersonation(target, user?.value),
  }
}

/** kubectl's rule: --as/--as-group win over the kubeconfig user's `as`/`as-groups`; groups need a user. */
function impersonation(target: KubeTarget, user: User | undefined): Pick<KubeAccess, 'impersonate'> {
  const as = target.as ?? user?.as
  const groups = target.asGroups ?? user?.['as-groups'] ?? []
  if (!as && groups.length === 0) return {}
  if (!as) {
    throw new UsageError('Usage', 'impersonating groups needs a user too: add --as <user> (kubectl asks the same)')
  }
  return { impersonate: { user: as, groups } }
}

function noCluster(): UsageError {
  return new UsageError('NoCluster', 'no Kubernetes cluster configured: set KUBECONFIG or pass --kubeconfig/--context')
}

/** Every context of the kubeconfig (`--kubeconfig`, else KUBECONFIG or ~/.kube/config), as kubectl lists them. */
export function contextNames(kubeconfig?: string): string[] {
  const files = kubeconfig ? [kubeconfig] : defaultFiles()
  return files.length === 0 ? [] : [...merge(files).contexts.keys()]
}

function defaultFiles(): string[] {
  const fromEnv = (process.env.KUBECONFIG ?? '').split(delimiter).filter((f) => f && existsSync(f))
  if (fromEnv.length > 0) return fromEnv
  const home = join(homedir(), '.kube', 'config')
  return existsSync(home) ? [home] : []
}

type Merged = {
  current: string | undefined
  clusters: Map<string, Entry<Cluster>>
  users: Map<string, Entry<User>>
  contexts: Map<string, Entry<Context>>
}

/** kubectl's merge: for each name, and for current-context, the first file that sets it wins. */
function merge(files: readonly string[]): Merged {
  const merged: Merged = { current: undefined, clusters: new Map(), users: new Map(), contexts: new Map() }
  for (const file of files) {
    let doc: Record<string, unknown>
    try {
      doc = (load(readFileSync(file, 'utf8')) ?? {}) as Record<string, unknown>
    } catch (error: unknown) {
      throw new UsageError('InvalidKubeconfig', `${file}: ${error instanceof Error ? error.message : String(error)}`)
    }
    const dir = dirname(file)
    const current = doc['current-context']
    if (!merged.current && typeof current === 'string' && current) merged.current = current
    add(merged.clusters, doc.clusters, 'cluster', dir)
    add(merged.users, doc.users, 'user', dir)
    add(merged.contexts, doc.contexts, 'context', dir)
  }
  return merged
}

function add<T>(into: Map<string, Entry<T>>, list: unknown, field: string, dir: string): void {
  if (!Array.isArray(list)) return
  for (const item of list as Array<Named<Record<string, unknown>>>) {
    if (typeof item.name === 'string' && !into.has(item.name)) {
      into.set(item.name, { value: (item[field] ?? {}) as T, dir })
    }
  }
}

/** Credentials berth reads itself: CA, client certificate, token (or token file), basic auth. */
function fromFiles(cluster: Entry<Cluster>, user: Entry<User>): KubeAccess['authorize'] {
  const c = cluster.value
  const u = user.value
  const ca = bytes(c['certificate-authority-data'], c['certificate-authority'], cluster.dir)
  const cert = bytes(u['client-certificate-data'], u['client-certificate'], user.dir)
  const key = bytes(u['client-key-data'], u['client-key'], user.dir)
  const token = u.tokenFile ? rereading(resolvePath(u.tokenFile, user.dir)) : (): string | undefined => u.token
  const basic
    = u.username !== undefined ? Buffer.from(`${u.username}:${u.password ?? ''}`).toString('base64') : undefined
  return (options) => {
    if (ca) options.ca = ca
    if (cert) options.cert = cert
    if (key) options.key = key
    if (c['insecure-skip-tls-verify']) options.rejectUnauthorized = false
    if (c['tls-server-name']) options.servername = c['tls-server-name']
    const bearer = token()
    const authorization = bearer ? `Bearer ${bearer}` : basic ? `Basic ${basic}` : undefined
    if (authorization) options.headers = { ...(options.headers as OutgoingHttpHeaders), Authorization: authorization }
    return Promise.resolve()
  }
}

/** The pod's ServiceAccount: the API server from the environment; its token, CA and namespace from the mount. */
export function inCluster(dir = SERVICE_ACCOUNT, env: NodeJS.ProcessEnv = process.env): KubeAccess {
  const host = env.KUBERNETES_SERVICE_HOST ?? ''
  const port = env.KUBERNETES_SERVICE_PORT ?? '443'
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`
  const namespaceFile = join(dir, 'namespace')
  const namespace = existsSync(namespaceFile) ? readFileSync(namespaceFile, 'utf8').trim() : undefined
  const authorize = fromFiles(
    { value: { 'server': server, 'certificate-authority': join(dir, 'ca.crt') }, dir },
    { value: { tokenFile: join(dir, 'token') }, dir },
  )
  return { server, namespace, authorize }
}

/** Everything else (exec plugins, auth providers, proxies): client-node's KubeConfig, loaded on first use. */
function clientNode(target: KubeTarget, files: readonly string[], context: string): KubeAccess['authorize'] {
  let loaded: Promise<(options: HttpsOptions) => Promise<void>> | undefined
  const load = async (): Promise<(options: HttpsOptions) => Promise<void>> => {
    const { KubeConfig } = await import('@kubernetes/client-node')
    const kc = new KubeConfig()
    if (target.kubeconfig) kc.loadFromFile(target.kubeconfig)
    else if (files.length > 0 && process.env.KUBECONFIG) kc.loadFromDefault()
    else kc.loadFromFile(files[0] ?? '')
    kc.setCurrentContext(context)
    return (options) => kc.applyToHTTPSOptions(options)
  }
  return async (options) => {
    loaded ??= load()
    try {
      await (await loaded)(options)
    } catch (error: unknown) {
      // The plugin's own words (its stderr) are the useful part; say where they came from.
      const said = messageOf(error).trim() || 'no message'
      throw new RemoteError(
        'CredentialsFailed',
        `the kubeconfig's credential plugin (exec or auth-provider of context "${context}") failed: ${said}`,
        { cause: error },
      )
    }
  }
}

function bytes(data: string | undefined, file: string | undefined, dir: string): Buffer | undefined {
  if (data) return Buffer.from(data, 'base64')
  return file ? readFileSync(resolvePath(file, dir)) : undefined
}

function resolvePath(file: string, dir: string): string {
  return isAbsolute(file) ? file : join(dir, file)
}

/** A token file read again when it changed, at most once a minute. */
function rereading(file: string): () => string | undefined {
  let token: string | undefined
  let readAt = 0
  let mtime = 0
  return () => {
    const now = Date.now()
    if (token === undefined || now - readAt > TOKEN_REREAD_MS) {
      readAt = now
      const changed = statSync(file).mtimeMs
      if (token === undefined || changed !== mtime) {
        token = readFileSync(file, 'utf8').trim()
        mtime = changed
      }
    }
    return token
  }
}
