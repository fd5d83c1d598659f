/**
 * The one module that talks to the Kubernetes API client (@kubernetes/client-node).
 *
 * Everything else in berth goes through {@link Kube}: it loads the kubeconfig the way kubectl
 * does (KUBECONFIG, --context, in-cluster), applies with server-side apply, and turns the
 * client's ApiException into a {@link KubeApiError} whose `reason` is the apiserver's own
 * (Forbidden, NotFound, Conflict, Invalid…).
 */
import { ApiException, KubeConfig, type KubernetesObject, KubernetesObjectApi, PatchStrategy } from '@kubernetes/client-node'
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
      throw new UsageError('UnknownContext', `context "${target.context}" is not in the kubeconfig; \`kubectl config get-contexts\` lists them`)
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

export class Kube {
  readonly config: KubeConfig
  private readonly objects: KubernetesObjectApi

  constructor(config: KubeConfig) {
    this.config = config
    this.objects = KubernetesObjectApi.makeApiClient(config)
  }

  static connect(target: KubeTarget = {}): Kube {
    return new Kube(loadKubeConfig(target))
  }

  /** Server-side apply `object`; returns the object as the apiserver stored (or would store) it. */
  async apply<T extends KubernetesObject>(object: T, options: ApplyOptions = {}): Promise<T> {
    const manager = options.fieldManager ?? 'berth'
    return await call(describe(object), () =>
      this.objects.patch(object, undefined, options.dryRun ? 'All' : undefined, manager, options.force ?? true, PatchStrategy.ServerSideApply),
    )
  }

  /** Read an object; undefined when it does not exist. */
  async get<T extends KubernetesObject>(ref: ObjectRef): Promise<T | undefined> {
    try {
      return await call(describe(ref), () => this.objects.read<T>(ref as Parameters<typeof this.objects.read<T>>[0]))
    } catch (error: unknown) {
      if (error instanceof KubeApiError && error.code === 404) return undefined
      throw error
    }
  }

  /** Delete an object; false when it was already gone. */
  async delete(ref: ObjectRef): Promise<boolean> {
    try {
      await call(describe(ref), () => this.objects.delete(ref as KubernetesObject))
      return true
    } catch (error: unknown) {
      if (error instanceof KubeApiError && error.code === 404) return false
      throw error
    }
  }

  /** Poll an object until `done` says so; throws after `timeoutMs`. Returns the last read. */
  async waitFor<T extends KubernetesObject>(ref: ObjectRef, done: (object: T | undefined) => boolean, timeoutMs: number): Promise<T | undefined> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const object = await this.get<T>(ref)
      if (done(object)) return object
      if (Date.now() > deadline) throw new RemoteError('Timeout', `${describe(ref)} did not reach the expected state within ${timeoutMs / 1000} s`)
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
}

function describe(object: { kind?: string; metadata?: { name?: string; namespace?: string } }): string {
  const ns = object.metadata?.namespace ? `${object.metadata.namespace}/` : ''
  return `${object.kind ?? 'object'} ${ns}${object.metadata?.name ?? '?'}`
}

async function call<T>(what: string, request: () => Promise<T>): Promise<T> {
  try {
    return await request()
  } catch (error: unknown) {
    throw toKubeError(what, error)
  }
}

/** Map a client error to a {@link KubeApiError} carrying the apiserver's reason and message. */
export function toKubeError(what: string, error: unknown): Error {
  if (error instanceof ApiException) {
    const status = parseStatus(error.body)
    const reason = status.reason ?? `Http${error.code}`
    return new KubeApiError(error.code, reason, `${what}: ${status.message ?? error.message}`, { cause: error })
  }
  if (error instanceof Error && /ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH|socket hang up/.test(error.message)) {
    return new KubeApiError(0, 'Unreachable', `${what}: cannot reach the Kubernetes API (${error.message}); check KUBECONFIG and the context`, { cause: error })
  }
  return error instanceof Error ? error : new Error(String(error))
}

// The client hands the body over as a string or as parsed JSON depending on the call.
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
