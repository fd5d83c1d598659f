/**
 * The one module that talks to the Kubernetes API.
 *
 * Everything else in berth goes through {@link Kube}: it loads the kubeconfig the way kubectl
 * does (KUBECONFIG, --context, in-cluster, `as`/`as-groups`; kubeconfig.ts) and sends plain
 * JSON over node:https with its credentials — no generated client in the path, so nothing drops
 * fields it does not know. Requests say `User-Agent: berth/<version>`, honour HTTPS_PROXY and
 * NO_PROXY as kubectl does (proxy.ts), and lists are read in pages. Failures become a
 * {@link KubeApiError} whose `reason` is the apiserver's own (Forbidden, NotFound, Conflict…).
 *
 * Every request has a deadline (`timeoutMs`, 30 s by default) and is cancelled by {@link Kube.close}:
 * a hung apiserver can hold a reconcile pass for at most that long, never forever. Every part of
 * a URL path that comes from data goes through {@link pathSegment}.
 */
import { type OutgoingHttpHeaders, request as httpRequest } from 'node:http'
import { type RequestOptions as HttpsOptions, request as httpsRequest } from 'node:https'
import { InvalidInputError, messageOf, RemoteError } from './errors.ts'
import { type KubeAccess, loadKubeConfig, type KubeTarget } from './kubeconfig.ts'
import { describeObject } from './manifests.ts'
import { BERTH } from './package-info.ts'
import { throughProxy } from './proxy.ts'
import { sleep } from './signals.ts'

export { type KubeAccess, loadKubeConfig, type KubeTarget } from './kubeconfig.ts'

/** What identifies an object: enough to read or delete it. */
export type ObjectRef = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }

/** The apiserver refused or failed a request. `code` is the HTTP status. */
export class KubeApiError extends RemoteError {
  readonly code: number
  /** The apiserver's own words, without what berth was doing. */
  readonly detail: string

  constructor(code: number, reason: string, message: string, options?: { cause?: unknown; detail?: string }) {
    super(reason, message, options)
    this.code = code
    this.detail = options?.detail ?? message
  }
}

/** `/api/v1` for the core group, `/apis/<group>/<version>` for the others. */
export function apiBase(apiVersion: string): string {
  return apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`
}

/**
 * One segment of an API path from data (a name or namespace), encoded; refused when no
 * encoding can place it safely. The apiserver's own rule for path segment names: not empty,
 * not `.` or `..` (which URL resolution would turn into a climb), no `/` or `%`. Control
 * characters are refused too. Names are validated by Kubernetes' rules well before this
 * ({@link ../shared/names.ts}); this is the last line, for every request.
 */
export function pathSegment(value: string, what = 'name'): string {
  // eslint-disable-next-line no-control-regex -- control characters are what this refuses
  if (value === '' || value === '.' || value === '..' || /[/%\u0000-\u001f\u007f]/.test(value)) {
    throw new InvalidInputError('InvalidName', `${what} ${JSON.stringify(value)} cannot be part of an API path`)
  }
  return encodeURIComponent(value)
}

export type KubeOptions = {
  /** Deadline of one request (not of a watch's stream), in milliseconds. Default 30 s. */
  timeoutMs?: number
}

export type ApplyOptions = {
  /** Field manager recorded in managedFields; berth's own is `berth`. */
  fieldManager?: string
  /** Take over fields another manager owns (conflicts are forced). Default true. */
  force?: boolean
  /** Server-side dry run: the result is what would be stored; nothing changes. */
  dryRun?: boolean
  /** The apiserver's warnings (deprecations and the like) are appended here. */
  warnings?: string[]
}

type RequestOptions = {
  what: string
  body?: unknown
  contentType?: string
  /** This request's deadline instead of the client's. */
  timeoutMs?: number
  warnings?: string[]
}

type Resource = { plural: string; namespaced: boolean }

const DEFAULT_TIMEOUT_MS = 30_000

/** What a watch tells its caller. */
export type WatchHandlers<T> = {
  event: (type: 'add' | 'update' | 'delete', object: T) => void
  /** A failure; the watch lists again after a backoff (5 minutes when forbidden). */
  error?: (error: unknown) => void
  /** Listed and current (true), or fallen out until the next list (false): trust what it said only while true. */
  synced?: (synced: boolean) => void
}

/** A running watch; `listed` settles once its first list was delivered. */
export type Watching = { stop: () => Promise<void>; listed: Promise<void> }

type Meta = { metadata?: { name?: string; namespace?: string; resourceVersion?: string } }

/** The apiserver ends each watch request after about this long (jittered); the watch continues from there. */
const WATCH_SECONDS = 300
/** Who is asking, in the apiserver's audit log and managedFields (`kubectl/<version> …` for kubectl). */
const USER_AGENT = `berth/${BERTH.version} (${process.platform}/${process.arch}) node/${process.versions.node}`
const FORBIDDEN_RETRY_MS = 300_000
/** Objects per page of a list (kubectl's --chunk-size default). */
const LIST_PAGE = 500

export class Kube {
  readonly access: KubeAccess
  readonly timeoutMs: number
  /** The user this client acts as (`Impersonate-User`), when not the kubeconfig's own. */
  readonly impersonating: string | undefined
  /** Discovery: `apiVersion/Kind` → resource, filled per group-version on first use. */
  private readonly resources: Map<string, Resource>
  private readonly closing: AbortController
  /** Requests sent by this client and the ones {@link as} made from it: what tests and benchmarks count. */
  readonly sent: { requests: number }

  constructor(
    access: KubeAccess,
    options: KubeOptions = {},
    shared?: {
      impersonating: string
      resources: Map<string, Resource>
      closing: AbortController
      sent: { requests: number }
    },
  ) {
    this.access = access
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    this.impersonating = shared?.impersonating
    this.resources = shared?.resources ?? new Map<string, Resource>()
    this.closing = shared?.closing ?? new AbortController()
    this.sent = shared?.sent ?? { requests: 0 }
  }

  /**
   * A client that acts as `user` (for a ServiceAccount `system:serviceaccount:<ns>:<name>`):
   * every request it sends (not watch()) is authorized as that user, which the apiserver
   * allows only to a client holding the `impersonate` verb. It shares this client's credentials,
   * deadline, discovery cache and close().
   */
  as(user: string): Kube {
    const shared = { impersonating: user, resources: this.resources, closing: this.closing, sent: this.sent }
    return new Kube(this.access, { timeoutMs: this.timeoutMs }, shared)
  }

  static connect(target: KubeTarget = {}, options: KubeOptions = {}): Kube {
    return new Kube(loadKubeConfig(target), options)
  }

  /** Cancel every request in flight and refuse new ones (shutdown). */
  close(): void {
    this.closing.abort(new RemoteError('ShuttingDown', 'the client was closed'))
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
      what: describeObject(object),
      body: object,
      contentType: 'application/apply-patch+yaml',
    })
  }

  /** Merge-patch the status subresource of `ref`. */
  async patchStatus<T extends object>(ref: ObjectRef, status: unknown): Promise<T> {
    return await this.request<T>('PATCH', `${await this.pathOf(ref)}/status`, {
      what: `status of ${describeObject(ref)}`,
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
    return await this.request<T>('PUT', await this.pathOf(object), { what: describeObject(object), body: object })
  }

  /** Create an object (POST); for objects named by `generateName`, such as Events. */
  async create<T extends { apiVersion: string; kind: string; metadata: { namespace?: string } }>(
    object: T,
  ): Promise<T> {
    const path = await this.collectionPath(object.apiVersion, object.kind, object.metadata.namespace ?? 'default')
    return await this.request<T>('POST', path, {
      what: `create ${object.kind}`,
      body: object,
    })
  }

  /** Merge-patch `ref` itself (metadata such as finalizers or annotations). */
  async mergePatch<T extends object>(ref: ObjectRef, patch: unknown): Promise<T> {
    return await this.request<T>('PATCH', await this.pathOf(ref), {
      what: describeObject(ref),
      body: patch,
      contentType: 'application/merge-patch+json',
    })
  }

  /** List objects of a kind, across namespaces unless `namespace` is given. */
  async list<T extends object>(
    apiVersion: string,
    kind: string,
    options: { namespace?: string; labelSelector?: string; pageSize?: number } = {},
  ): Promise<T[]> {
    return (await this.listAt<T>(apiVersion, kind, options)).items
  }

  /** Read an object; undefined when it does not exist. */
  async get<T extends object>(ref: ObjectRef): Promise<T | undefined> {
    try {
      return await this.request<T>('GET', await this.pathOf(ref), { what: describeObject(ref) })
    } catch (error: unknown) {
      if (error instanceof KubeApiError && error.code === 404) return undefined
      throw error
    }
  }

  /**
   * Delete an object; false when it was already gone. With `preconditions` (the uid and resourceVersion of the copy a
   * caller judged), the apiserver refuses with 409 Conflict if the object has changed or been replaced since.
   */
  async delete(ref: ObjectRef, preconditions?: { uid?: string; resourceVersion?: string }): Promise<boolean> {
    try {
      await this.request('DELETE', await this.pathOf(ref), {
        what: describeObject(ref),
        body: { propagationPolicy: 'Background', ...(preconditions ? { preconditions } : {}) },
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
          `${describeObject(ref)} did not reach the expected state within ${timeoutMs / 1000} s`,
        )
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }

  /**
   * Watch a kind, cluster-wide or in one namespace, label-selected: a list, then watch requests
   * from its resourceVersion, each ended by the apiserver after a few minutes and continued from
   * the last event or bookmark. After any failure it lists again (at once after 410 Gone, with
   * backoff otherwise, 5 minutes after 403) and reports what changed meanwhile, deletions
   * included, so no failure ends a watch silently. Of each object it keeps only the
   * resourceVersion; the caller keeps what it needs. Authorized as this client's user.
   * With a label selector, an object that stops matching arrives as a deletion.
   */
  // The caller names the kind it watches; the events carry that kind.

  async watch<T extends Meta>(
    apiVersion: string,
    kind: string,
    handlers: WatchHandlers<T>,
    where: { namespace?: string | undefined; labelSelector?: string | undefined } = {},
  ): Promise<Watching> {
    // An unknown kind fails here, at once: there is nothing to retry.
    await this.collectionPath(apiVersion, kind, where.namespace)
    const stopper = new AbortController()
    const stopped = (): boolean => stopper.signal.aborted
    const known = new Map<string, string>()
    const keyOf = (o: T): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`
    const seen = (o: T): void => {
      const key = keyOf(o)
      const before = known.get(key)
      const now = o.metadata?.resourceVersion ?? ''
      known.set(key, now)
      if (before === undefined) handlers.event('add', o)
      else if (before !== now) handlers.event('update', o)
    }
    const gone = (key: string, o?: T): void => {
      known.delete(key)
      const [namespace = '', name = ''] = key.split('/')
      const stub = { apiVersion, kind, metadata: { name, ...(namespace ? { namespace } : {}) } } as unknown as T
      handlers.event('delete', o ?? stub)
    }
    let listedOnce: () => void = () => undefined
    const listed = new Promise<void>((resolve) => (listedOnce = resolve))
    const run = async (): Promise<void> => {
      let failures = 0
      while (!stopper.signal.aborted) {
        try {
          const list = await this.listAt<T>(apiVersion, kind, where)
          const listedKeys = new Set(list.items.map(keyOf))
          for (const item of list.items) seen(item)
          for (const key of [...known.keys()]) if (!listedKeys.has(key)) gone(key)
          handlers.synced?.(true)
          listedOnce()
          failures = 0
          let resourceVersion = list.resourceVersion
          for (;;) {
            const timeoutSeconds = WATCH_SECONDS + Math.floor(Math.random() * 60)
            const options = { ...where, resourceVersion, timeoutSeconds, signal: stopper.signal }
            resourceVersion = await this.watchFrom<T>(apiVersion, kind, options, (type, object) => {
              if (type === 'DELETED') gone(keyOf(object), object)
              else seen(object)
            })
          }
        } catch (error: unknown) {
          handlers.synced?.(false)
          if (stopped()) return
          // 410 Gone: the watch fell too far behind; list again at once.
          if (error instanceof KubeApiError && error.code === 410) continue
          failures++
          handlers.error?.(error)
          const forbidden = error instanceof KubeApiError && error.code === 403
          await sleep(forbidden ? FORBIDDEN_RETRY_MS : Math.min(1000 * 2 ** (failures - 1), 30_000), stopper.signal)
        }
      }
    }
    const running = run()
    return {
      listed,
      stop: async () => {
        stopper.abort()
        await running
      },
    }
  }

  /**
   * Every kind the cluster serves that can be listed, with whether it is namespaced: the core
   * group and each group's preferred version (full discovery; what looking inside a Namespace
   * before deleting it needs).
   */
  async listableKinds(): Promise<Array<{ apiVersion: string; kind: string; namespaced: boolean }>> {
    type Resources = { resources: Array<{ name: string; kind: string; namespaced: boolean; verbs?: string[] }> }
    type Groups = { groups: Array<{ preferredVersion?: { groupVersion: string } }> }
    const groups = await this.request<Groups>('GET', '/apis', { what: 'discovery of API groups' })
    const versions = ['v1', ...groups.groups.flatMap((g) => (g.preferredVersion ? [g.preferredVersion.groupVersion] : []))]
    const kinds = await Promise.all(
      versions.map(async (apiVersion) => {
        const list = await this.request<Resources>('GET', apiBase(apiVersion), { what: `discovery of ${apiVersion}` })
        return list.resources
          .filter((r) => !r.name.includes('/') && (r.verbs ?? []).includes('list'))
          .map((r) => ({ apiVersion, kind: r.kind, namespaced: r.namespaced }))
      }),
    )
    return kinds.flat()
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
      type Discovery = { resources: Array<{ name: string; kind: string; namespaced: boolean }> }
      const list = await this.request<Discovery>('GET', apiBase(apiVersion), {
        what: `discovery of ${apiVersion}`,
      }).catch((error: unknown) => {
        if (error instanceof KubeApiError && error.code === 404) return { resources: [] }
        throw error
      })
      for (const r of list.resources) {
        if (!r.name.includes('/'))
          this.resources.set(`${apiVersion}/${r.kind}`, { plural: r.name, namespaced: r.namespaced })
      }
      found = this.resources.get(key)
    }
    if (!found) {
      throw new KubeApiError(
        404,
        'NoKind',
        `the cluster does not serve ${kind} in ${apiVersion} (is its CRD installed?)`,
      )
    }
    return found
  }

  /** `/apis/<group>/<version>[/namespaces/<ns>]/<plural>`: the namespace only where the kind is namespaced. */
  private async collectionPath(apiVersion: string, kind: string, namespace: string | undefined): Promise<string> {
    const resource = await this.resource(apiVersion, kind)
    const scope = resource.namespaced && namespace ? `/namespaces/${pathSegment(namespace, 'namespace')}` : ''
    return `${apiBase(apiVersion)}${scope}/${resource.plural}`
  }

  private async pathOf(ref: {
    apiVersion?: string
    kind?: string
    metadata?: { name?: string; namespace?: string }
  }): Promise<string> {
    const namespace = ref.metadata?.namespace ?? 'default'
    const collection = await this.collectionPath(ref.apiVersion ?? '', ref.kind ?? '', namespace)
    return `${collection}/${pathSegment(ref.metadata?.name ?? '')}`
  }

  /**
   * List a kind (label-selected) with the list's resourceVersion: the point a {@link watchFrom}
   * continues from, so nothing between the list and the watch is missed.
   */
  // The caller names the kind it lists; the items are of that kind.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
  async listAt<T extends object>(
    apiVersion: string,
    kind: string,
    options: {
      namespace?: string | undefined
      labelSelector?: string | undefined
      fieldSelector?: string | undefined
      pageSize?: number
    } = {},
  ): Promise<{ items: T[]; resourceVersion: string }> {
    const path = await this.collectionPath(apiVersion, kind, options.namespace)
    type Page = { items: T[]; metadata?: { resourceVersion?: string; continue?: string } }
    const items: T[] = []
    let resourceVersion = ''
    // In pages, as kubectl reads large lists: the apiserver serves every page from one snapshot,
    // and no single answer holds thousands of objects in memory at once.
    for (let next: string | undefined = ''; next !== undefined;) {
      const query = new URLSearchParams({ limit: String(options.pageSize ?? LIST_PAGE) })
      if (options.labelSelector) query.set('labelSelector', options.labelSelector)
      if (options.fieldSelector) query.set('fieldSelector', options.fieldSelector)
      if (next) query.set('continue', next)
      const page = await this.request<Page>('GET', `${path}?${query.toString()}`, { what: `list ${kind}` })
      for (const item of page.items) items.push({ ...item, apiVersion, kind })
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion
      next = page.metadata?.continue || undefined
    }
    return { items, resourceVersion }
  }

  /**
   * One watch request from `resourceVersion` (with bookmarks): `onEvent` gets each change in
   * order. Resolves with the last resourceVersion seen when the apiserver ends the stream (after
   * `timeoutSeconds`), so the caller continues from there; rejects on any failure, a stream that
   * stays silent past the timeout, an ERROR event (410 Gone: the caller must list again), or
   * `signal`. Authorized as this client's user, impersonation included.
   */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
  async watchFrom<T extends object>(
    apiVersion: string,
    kind: string,
    options: {
      namespace?: string | undefined
      labelSelector?: string | undefined
      fieldSelector?: string | undefined
      resourceVersion: string
      timeoutSeconds: number
      signal?: AbortSignal | undefined
    },
    onEvent: (type: 'ADDED' | 'MODIFIED' | 'DELETED', object: T) => void,
  ): Promise<string> {
    const path = await this.collectionPath(apiVersion, kind, options.namespace)
    const query = new URLSearchParams({
      watch: '1',
      allowWatchBookmarks: 'true',
      resourceVersion: options.resourceVersion,
      timeoutSeconds: String(options.timeoutSeconds),
    })
    if (options.labelSelector) query.set('labelSelector', options.labelSelector)
    if (options.fieldSelector) query.set('fieldSelector', options.fieldSelector)
    const what = `watch ${kind}`
    // Inactivity, not a deadline on the whole stream: the apiserver ends it itself after timeoutSeconds.
    const idleMs = (options.timeoutSeconds + 30) * 1000
    const abort = linked([this.closing.signal, ...(options.signal ? [options.signal] : [])], idleMs)
    const { signal } = abort
    const { url, https } = await this.prepare('GET', `${path}?${query.toString()}`, undefined, undefined, signal)
    let resourceVersion = options.resourceVersion
    const onLine = (line: string): void => {
      abort.restart()
      type Status = { code?: number; reason?: string; message?: string; metadata?: { resourceVersion?: string } }
      const event = JSON.parse(line) as { type: string; object: T & Status }
      if (event.type === 'ERROR') {
        const { code = 500, reason = 'WatchFailed', message = 'the watch failed' } = event.object
        throw new KubeApiError(code, reason, `${what}: ${message}`, { detail: message })
      }
      resourceVersion = event.object.metadata?.resourceVersion ?? resourceVersion
      if (event.type === 'ADDED' || event.type === 'MODIFIED' || event.type === 'DELETED')
        onEvent(event.type, event.object)
    }
    try {
      const response = await streamLines(url, https, onLine)
      if (response.status < 200 || response.status >= 300) throw refused(what, response)
      return resourceVersion
    } catch (error: unknown) {
      if (error instanceof KubeApiError) throw error
      throw toKubeError(what, error, signal, idleMs)
    } finally {
      abort.clear()
    }
  }

  /**
   * One HTTP request to the apiserver with the kubeconfig's credentials; JSON in and out. It
   * ends by its deadline or by {@link close}, whichever comes first.
   */
  async request<T>(method: string, path: string, options: RequestOptions): Promise<T> {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body)
    const timeoutMs = options.timeoutMs ?? this.timeoutMs
    const abort = linked([this.closing.signal], timeoutMs)
    const { signal } = abort
    const { url, https } = await this.prepare(method, path, payload, options.contentType, signal)
    this.sent.requests++
    const response = await send(url, https, payload)
      .catch((error: unknown) => {
        throw toKubeError(options.what, error, signal, timeoutMs)
      })
      .finally(() => abort.clear())
    options.warnings?.push(...response.warnings)
    if (response.status >= 200 && response.status < 300) return (response.text ? JSON.parse(response.text) : {}) as T
    throw refused(options.what, response)
  }

  /** The URL and options of a request: the kubeconfig's credentials, impersonation, body headers. */
  private async prepare(
    method: string,
    path: string,
    payload: string | undefined,
    contentType: string | undefined,
    signal: AbortSignal,
  ): Promise<{ url: URL; https: HttpsOptions }> {
    const url = new URL(path, this.access.server)
    const headers: OutgoingHttpHeaders = { 'Accept': 'application/json', 'User-Agent': USER_AGENT }
    // A client made by as() acts as that user alone; otherwise the kubeconfig's (or --as/--as-group's) identity.
    const user = this.impersonating ?? this.access.impersonate?.user
    if (user) headers['Impersonate-User'] = user
    const groups = this.impersonating ? [] : (this.access.impersonate?.groups ?? [])
    if (groups.length > 0) headers['Impersonate-Group'] = [...groups]
    if (payload !== undefined) {
      headers['Content-Type'] = contentType ?? 'application/json'
      headers['Content-Length'] = Buffer.byteLength(payload)
    }
    const https: HttpsOptions = { method, headers: { ...headers }, signal }
    // Adds client certificates, CA and bearer tokens (it may replace the headers object).
    await this.access.authorize(https)
    https.headers = { ...(https.headers as OutgoingHttpHeaders), ...headers }
    // HTTPS_PROXY / NO_PROXY as kubectl reads them; a direct connection when none applies.
    const routed = throughProxy(url, https)
    return { url: routed.url, https: routed.options }
  }
}

/**
 * A streaming GET: each newline-terminated line of a 2xx body goes to `onLine` as it arrives (an
 * exception there ends the request and rejects); any other status is read whole and returned.
 */
function streamLines(url: URL, options: HttpsOptions, onLine: (line: string) => void): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    const sender = url.protocol === 'https:' ? httpsRequest : httpRequest
    const req = sender(url, options, (res) => {
      const status = res.statusCode ?? 0
      let buffered = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        buffered += chunk
        if (status < 200 || status >= 300) return
        let newline = buffered.indexOf('\n')
        try {
          while (newline >= 0) {
            const line = buffered.slice(0, newline).trim()
            buffered = buffered.slice(newline + 1)
            if (line) onLine(line)
            newline = buffered.indexOf('\n')
          }
        } catch (error: unknown) {
          req.destroy()
          reject(error instanceof Error ? error : new Error(String(error)))
        }
      })
      res.on('end', () => resolve({ status, text: buffered, warnings: [] }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

type Response = { status: number; text: string; warnings: string[] }

function send(url: URL, options: HttpsOptions, payload: string | undefined): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    const sender = url.protocol === 'https:' ? httpsRequest : httpRequest
    const req = sender(url, options, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, text: body, warnings: warningsOf(res.headers.warning) }),
      )
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(payload)
  })
}

// `Warning: 299 - "message"` headers (RFC 7234), as the apiserver sends them; one or several.
function warningsOf(header: string | string[] | undefined): string[] {
  const values = header === undefined ? [] : Array.isArray(header) ? header : [header]
  return values.flatMap((v) =>
    [...v.matchAll(/\d{3} \S+ "((?:[^"\\]|\\.)*)"/g)].map((m) => (m[1] ?? '').replace(/\\(.)/g, '$1')),
  )
}

/** Map a transport failure to a {@link KubeApiError} that says what to check. */
function toKubeError(what: string, error: unknown, signal: AbortSignal, timeoutMs: number): Error {
  if (signal.aborted) {
    const reason: unknown = signal.reason
    if (reason instanceof RemoteError)
      return new KubeApiError(0, reason.reason, `${what}: ${reason.message}`, { cause: error })
    return new KubeApiError(0, 'Timeout', `${what}: no answer from the Kubernetes API within ${timeoutMs / 1000} s`, {
      cause: error,
    })
  }
  if (error instanceof Error && /ECONNREFUSED|ECONNRESET|EPIPE|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH|socket hang up/.test(error.message)) {
    const hint = 'check KUBECONFIG and the context'
    return new KubeApiError(
      0,
      'Unreachable',
      `${what}: cannot reach the Kubernetes API (${messageOf(error)}); ${hint}`,
      {
        cause: error,
      },
    )
  }
  return error instanceof Error ? error : new Error(String(error))
}

/** A non-2xx answer as the error it is: the apiserver's reason and words, after what berth was doing. */
function refused(what: string, response: Response): KubeApiError {
  const parsed = parseStatus(response.text)
  const detail = parsed.message ?? response.text
  return new KubeApiError(response.status, parsed.reason ?? `Http${response.status}`, `${what}: ${detail}`, { detail })
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

/**
 * A signal that aborts when any of `parents` does, or after `ms` (restartable, for inactivity).
 * `clear()` must end it: unlike `AbortSignal.any`/`AbortSignal.timeout`, which leave a timer
 * alive for the whole deadline and a weak link in the long-lived parent per request (thousands
 * of them at a few hundred requests a second, and the garbage collector's time with them), this
 * lets go of both the moment the request is over.
 */
function linked(
  parents: readonly AbortSignal[],
  ms: number,
): { signal: AbortSignal; restart: () => void; clear: () => void } {
  const controller = new AbortController()
  const fromParent = (event: Event): void => controller.abort((event.target as AbortSignal).reason)
  for (const parent of parents) {
    if (parent.aborted) controller.abort(parent.reason)
    else parent.addEventListener('abort', fromParent, { once: true })
  }
  let timer = setTimeout(() => controller.abort(), ms)
  return {
    signal: controller.signal,
    restart: () => {
      clearTimeout(timer)
      timer = setTimeout(() => controller.abort(), ms)
    },
    clear: () => {
      clearTimeout(timer)
      for (const parent of parents) parent.removeEventListener('abort', fromParent)
    },
  }
}
