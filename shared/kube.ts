/**
 * The one module that talks to the Kubernetes API client (@kubernetes/client-node).
 *
 * Everything else in berth goes through {@link Kube}: it loads the kubeconfig the way kubectl
 * does (KUBECONFIG, --context, in-cluster) and sends requests with its credentials. Objects
 * travel as plain JSON, exactly as berth has them — client-node's typed models are not in
 * the path, since they can drop fields they do not know. Failures become a
 * {@link KubeApiError} whose `reason` is the apiserver's own (Forbidden, NotFound, Conflict…).
 */
import { type OutgoingHttpHeaders, request as httpRequest } from 'node:http'
import { type RequestOptions, request as httpsRequest } from 'node:https'
import {
  ADD,
  DELETE,
  ERROR,
  KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  makeInformer,
  UPDATE,
} from '@kubernetes/client-node'
import { RemoteError, UsageError } from './errors.ts'

export type KubeTarget = {
  /** Path of a kubeconfig; default `$KUBECONFIG`, `~/.kube/config`, or in-cluster. */
  kubeconfig?: string
  /** Context to use instead of the kubeconfig's current one. */
  context?: string
}

/** What identifies an object: enough to read or delete it. */
export type ObjectRef = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }

/** The apiserver refused or failed a request. `code` is the HTTP status. */
export class KubeApiError extends RemoteError {
  readonly code: number

  constructor(code: number, reason: string, message: string, options?: { cause?: unknown }) {
    super(reason, message, options)
    this.code = code
  }
}

/** Load a kubeconfig as kubectl would. */
export function loadKubeConfig(target: KubeTarget = {}): KubeConfig {
  const kc = new KubeConfig()
  if (target.kubeconfig) kc.loadFromFile(target.kubeconfig)
  else kc.loadFromDefault()
  if (target.context) {
    if (!kc.getContextObject(target.context)) {
      throw new UsageError(
        'UnknownContext',
        `context "${target.context}" is not in the kubeconfig; \`kubectl config get-contexts\` lists them`,
      )
    }
    kc.setCurrentContext(target.context)
  }
  if (!kc.getCurrentCluster()) {
    throw new UsageError('NoCluster', 'no Kubernetes cluster configured: set KUBECONFIG or pass --kubeconfig/--context')
  }
  return kc
}

export type ApplyOptions = {
  /** Field manager recorded in managedFields; berth's own is `berth`. */
  fieldManager?: string
  /** Take over fields another manager owns (conflicts are forced). Default true. */
  force?: boolean
  /** Server-side dry run: the result is what would be stored; nothing changes. */
  dryRun?: boolean
}

type Resource = { plural: string; namespaced: boolean }

export class Kube {
  readonly config: KubeConfig
  /** Discovery: `apiVersion/Kind` → resource, filled per group-version on first use. */
  private readonly resources = new Map<string, Resource>()

  constructor(config: KubeConfig) {
    this.config = config
  }

  static connect(target: KubeTarget = {}): Kube {
    return new Kube(loadKubeConfig(target))
  }

  /**
   * Server-side apply `object` exactly as given; returns what the apiserver stored (or would
   * store). Sent as JSON without passing through the client's typed models, which can drop
   * fields they do not know.
   */
  async apply<T extends { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string } }>(
    object: T,
    options: ApplyOptions = {},
  ): Promise<T> {
    const query = new URLSearchParams({
      fieldManager: options.fieldManager ?? 'berth',
      force: String(options.force ?? true),
    })
    if (options.dryRun) query.set('dryRun', 'All')
    return await this.request<T>('PATCH', `${await this.pathOf(object)}?${query.toString()}`, {
      what: describe(object),
      body: object,
      contentType: 'application/apply-patch+yaml',
    })
  }

  /** Merge-patch the status subresource of `ref`. */
  async patchStatus<T extends object>(ref: ObjectRef, status: unknown): Promise<T> {
    return await this.request<T>('PATCH', `${await this.pathOf(ref)}/status`, {
      what: `status of ${describe(ref)}`,
      body: { status },
      contentType: 'application/merge-patch+json',
    })
  }

  /** Replace an object (PUT); with metadata.resourceVersion set, a concurrent writer makes this fail with 409. */
  async update<
    T extends {
      apiVersion: string
      kind: string
      metadata: { name: string; namespace?: string; resourceVersion?: string }
    },
  >(object: T): Promise<T> {
    return await this.request<T>('PUT', await this.pathOf(object), { what: describe(object), body: object })
  }

  /** Create an object (POST); for objects named by `generateName`, such as Events. */
  async create<T extends { apiVersion: string; kind: string; metadata: { namespace?: string } }>(
    object: T,
  ): Promise<T> {
    const resource = await this.resource(object.apiVersion, object.kind)
    const base = object.apiVersion.includes('/') ? `/apis/${object.apiVersion}` : `/api/${object.apiVersion}`
    const scope = resource.namespaced ? `/namespaces/${encodeURIComponent(object.metadata.namespace ?? 'default')}` : ''
    return await this.request<T>('POST', `${base}${scope}/${resource.plural}`, {
      what: `create ${object.kind}`,
      body: object,
    })
  }

  /** Merge-patch `ref` itself (metadata such as finalizers or annotations). */
  async mergePatch<T extends object>(ref: ObjectRef, patch: unknown): Promise<T> {
    return await this.request<T>('PATCH', await this.pathOf(ref), {
      what: describe(ref),
      body: patch,
      contentType: 'application/merge-patch+json',
    })
  }

  /** List objects of a kind, across namespaces unless `namespace` is given. */
  async list<T extends object>(
    apiVersion: string,
    kind: string,
    options: { namespace?: string; labelSelector?: string } = {},
  ): Promise<T[]> {
    const resource = await this.resource(apiVersion, kind)
    const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`
    const scope = resource.namespaced && options.namespace ? `/namespaces/${encodeURIComponent(options.namespace)}` : ''
    const query = options.labelSelector ? `?labelSelector=${encodeURIComponent(options.labelSelector)}` : ''
    const result = await this.request<{ items: T[] }>('GET', `${base}${scope}/${resource.plural}${query}`, {
      what: `list ${kind}`,
    })
    return result.items.map((item) => ({ ...item, apiVersion, kind }))
  }

  /** Read an object; undefined when it does not exist. */
  async get<T extends object>(ref: ObjectRef): Promise<T | undefined> {
    try {
      return await this.request<T>('GET', await this.pathOf(ref), { what: describe(ref) })
    } catch (error: unknown) {
      if (error instanceof KubeApiError && error.code === 404) return undefined
      throw error
    }
  }

  /** Delete an object; false when it was already gone. */
  async delete(ref: ObjectRef): Promise<boolean> {
    try {
      await this.request('DELETE', await this.pathOf(ref), {
        what: describe(ref),
        body: { propagationPolicy: 'Background' },
      })
      return true
    } catch (error: unknown) {
      if (error instanceof KubeApiError && error.code === 404) return false
      throw error
    }
  }

  /** Poll an object until `done` says so; throws after `timeoutMs`. Returns the last read. */
  async waitFor<T extends object>(
    ref: ObjectRef,
    done: (object: T | undefined) => boolean,
    timeoutMs: number,
  ): Promise<T | undefined> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const object = await this.get<T>(ref)
      if (done(object)) return object
      if (Date.now() > deadline)
        throw new RemoteError(
          'Timeout',
          `${describe(ref)} did not reach the expected state within ${timeoutMs / 1000} s`,
        )
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }

  /**
   * Watch every object of a kind, cluster-wide or in one namespace (list, then watch). client-node's informer
   * stops on any error other than 410 Gone, including its inactivity timeout, and nothing
   * restarts it; this does, with backoff, so a watch never silently ends.
   */
  // The caller names the kind it watches; the events carry that kind.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
  async watch<T extends { metadata?: { name?: string; namespace?: string } }>(
    apiVersion: string,
    kind: string,
    onEvent: (type: 'add' | 'update' | 'delete', object: T) => void,
    onError: (error: unknown) => void = () => undefined,
    namespace?: string,
  ): Promise<{ stop: () => Promise<void> }> {
    const resource = await this.resource(apiVersion, kind)
    const scope = namespace && resource.namespaced ? `/namespaces/${encodeURIComponent(namespace)}` : ''
    const path = `${apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`}${scope}/${resource.plural}`
    const list = (): Promise<KubernetesListObject<KubernetesObject>> =>
      this.request<KubernetesListObject<KubernetesObject>>('GET', path, { what: `list ${kind}` })
    const informer = makeInformer<KubernetesObject>(this.config, path, list)
    let stopped = false
    let failures = 0
    let timer: NodeJS.Timeout | undefined
    informer.on(ADD, (o) => {
      failures = 0
      onEvent('add', o as T)
    })
    informer.on(UPDATE, (o) => {
      failures = 0
      onEvent('update', o as T)
    })
    informer.on(DELETE, (o) => onEvent('delete', o as T))
    informer.on(ERROR, (error: unknown) => {
      if (stopped) return
      onError(error)
      failures++
      // Not straight from the handler: restarting at once has caused request storms upstream.
      timer = setTimeout(
        () => {
          if (!stopped) informer.start().catch(onError)
        },
        Math.min(1000 * 2 ** (failures - 1), 30_000),
      )
    })
    await informer.start()
    return {
      stop: async () => {
        stopped = true
        if (timer) clearTimeout(timer)
        await informer.stop()
      },
    }
  }

  /** Forget discovery answers, e.g. after a CRD was created. */
  forgetDiscovery(): void {
    this.resources.clear()
  }

  /** The REST resource behind `apiVersion`/`kind` (discovery, cached). */
  async resource(apiVersion: string, kind: string): Promise<Resource> {
    const key = `${apiVersion}/${kind}`
    let found = this.resources.get(key)
    if (!found) {
      const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`
      const list = await this.request<{ resources: Array<{ name: string; kind: string; namespaced: boolean }> }>(
        'GET',
        base,
        { what: `discovery of ${apiVersion}` },
      ).catch((error: unknown) => {
        if (error instanceof KubeApiError && error.code === 404) return { resources: [] }
        throw error
      })
      for (const r of list.resources)
        if (!r.name.includes('/'))
          this.resources.set(`${apiVersion}/${r.kind}`, { plural: r.name, namespaced: r.namespaced })
      found = this.resources.get(key)
    }
    if (!found)
      throw new KubeApiError(
        404,
        'NoKind',
        `the cluster does not serve ${kind} in ${apiVersion} (is its CRD installed?)`,
      )
    return found
  }

  private async pathOf(ref: {
    apiVersion?: string
    kind?: string
    metadata?: { name?: string; namespace?: string }
  }): Promise<string> {
    const apiVersion = ref.apiVersion ?? ''
    const resource = await this.resource(apiVersion, ref.kind ?? '')
    const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`
    const namespace = ref.metadata?.namespace ?? (resource.namespaced ? 'default' : undefined)
    const scope = resource.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : ''
    return `${base}${scope}/${resource.plural}/${encodeURIComponent(ref.metadata?.name ?? '')}`
  }

  /** One HTTP request to the apiserver with the kubeconfig's credentials; JSON in and out. */
  async request<T>(
    method: string,
    path: string,
    options: { what: string; body?: unknown; contentType?: string },
  ): Promise<T> {
    const cluster = this.config.getCurrentCluster()
    if (!cluster)
      throw new UsageError(
        'NoCluster',
        'no Kubernetes cluster configured: set KUBECONFIG or pass --kubeconfig/--context',
      )
    const url = new URL(path, cluster.server)
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body)
    const headers: OutgoingHttpHeaders = { Accept: 'application/json' }
    if (payload !== undefined)
      Object.assign(headers, {
        'Content-Type': options.contentType ?? 'application/json',
        'Content-Length': Buffer.byteLength(payload),
      })
    const https: RequestOptions = { method, headers: { ...headers } }
    // Adds client certificates, CA and bearer tokens (it may replace the headers object).
    await this.config.applyToHTTPSOptions(https)
    https.headers = { ...(https.headers as OutgoingHttpHeaders), ...headers }
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest
      const req = send(url, https, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => (body += chunk))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: body }))
        res.on('error', reject)
      })
      req.on('error', reject)
      req.end(payload)
    }).catch((error: unknown) => {
      throw toKubeError(options.what, error)
    })
    if (status >= 200 && status < 300) return (text ? JSON.parse(text) : {}) as T
    const parsed = parseStatus(text)
    throw new KubeApiError(status, parsed.reason ?? `Http${status}`, `${options.what}: ${parsed.message ?? text}`)
  }
}

function describe(object: { kind?: string; metadata?: { name?: string; namespace?: string } }): string {
  const ns = object.metadata?.namespace ? `${object.metadata.namespace}/` : ''
  return `${object.kind ?? 'object'} ${ns}${object.metadata?.name ?? '?'}`
}

/** Map a transport failure to a {@link KubeApiError} that says what to check. */
function toKubeError(what: string, error: unknown): Error {
  if (error instanceof Error && /ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH|socket hang up/.test(error.message)) {
    return new KubeApiError(
      0,
      'Unreachable',
      `${what}: cannot reach the Kubernetes API (${error.message}); check KUBECONFIG and the context`,
      { cause: error },
    )
  }
  return error instanceof Error ? error : new Error(String(error))
}

// An apiserver error body is a Status object; anything else is kept as the message.
function parseStatus(body: unknown): { reason?: string; message?: string } {
  let value = body
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body)
    } catch {
      return { message: body }
    }
  }
  if (value && typeof value === 'object') {
    const { reason, message } = value as { reason?: unknown; message?: unknown }
    return {
      ...(typeof reason === 'string' && reason ? { reason } : {}),
      ...(typeof message === 'string' && message ? { message } : {}),
    }
  }
  return {}
}
