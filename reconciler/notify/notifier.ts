/**
 * Delivering notifications: one queue per Environment and receiver, so each receiver hears of
 * one Environment's transitions in the order they happened and a slow receiver holds up no
 * other. Each notification is tried a bounded number of times with a doubling delay (a network
 * failure, a timeout, 408, 429 or 5xx is tried again; any other answer is final); what cannot be
 * delivered is counted (`berth_notifications_total{result="failed"}`) and told as a
 * `NotificationFailed` Event. Nothing here is awaited by a reconcile pass.
 *
 * A receiver's address and token live in its Secret and are read for each attempt (a fixed
 * Secret takes effect at once); neither appears in a log line, an Event or the status: a
 * receiver is named by its number, type and Secret.
 */
import { AddressGuard, DeniedAddressError, type Resolve } from '../outbound/address-guard.ts'
import { readEndpointSecret } from '../outbound/endpoint-secret.ts'
import { InvalidInputError, kindOf, messageOf } from '../../shared/errors.ts'
import type { Kube } from '../../shared/kube.ts'
import { sleep } from '../../shared/signals.ts'
import type { Environment, Receiver } from '../../api/environment.ts'
import { recordEvent } from '../pass/events.ts'
import { Lru } from '../../shared/memo.ts'
import { type HttpRequest, post } from '../outbound/http-post.ts'
import type { Notification } from './notify.ts'
import {
  githubDeploymentRequest,
  githubStatusRequest,
  type ReceiverSecret,
  slackRequest,
  webhookRequest,
} from './payloads.ts'
import type { Log, Notifier as NotifierPort } from '../pass/pass.ts'

export type DeliveryResult = 'sent' | 'failed' | 'dropped'

export type NotifierOptions = {
  /** The reconciler's own client, for NotificationFailed Events. */
  kube: Kube
  log?: Log
  /** Told the result of every notification (the metric). */
  count?: (result: DeliveryResult) => void
  /** Tries per notification; default 5. */
  attempts?: number
  /** Delay before the second try, doubled for each next one (at most 5 min); default 2 s. */
  retryMs?: number
  /** Deadline of one request; default 10 s. */
  timeoutMs?: number
  /** Notifications waiting per receiver beyond which new ones are dropped (and counted); default 100. */
  maxQueued?: number
  /** Ranges receivers may not resolve to, beyond the link-local ones always denied (`--deny-receiver-cidr`). */
  denyCidrs?: readonly string[]
  /** How receiver names are resolved; default the system's resolver (tests inject one). */
  resolve?: Resolve
}

type Job = {
  env: Environment
  receiver: Receiver
  /** `receiver 2 (slack, Secret shop/chat-hook)`: how messages name it, never by its address. */
  named: string
  key: string
  identity: () => Promise<Kube>
  notification: Notification
}

/** A failed attempt, and whether another could succeed. */
class DeliveryError extends Error {
  readonly retryable: boolean

  constructor(message: string, retryable: boolean) {
    super(message)
    this.retryable = retryable
  }
}

export class Notifier implements NotifierPort {
  private readonly queues = new Map<string, { tail: Promise<void>; waiting: number }>()
  /** GitHub deployment ids by receiver, environment and digest: one deployment per version, statuses on it. */
  private readonly deployments = new Lru<number>(500)
  private readonly closing = new AbortController()
  private readonly options: Required<Omit<NotifierOptions, 'log' | 'count' | 'denyCidrs' | 'resolve'>>
    & Pick<NotifierOptions, 'log' | 'count'>

  private readonly guard: AddressGuard

  constructor(options: NotifierOptions) {
    const { denyCidrs, resolve, ...rest } = options
    this.options = { attempts: 5, retryMs: 2000, timeoutMs: 10_000, maxQueued: 100, ...rest }
    this.guard = new AddressGuard(denyCidrs, resolve)
  }

  send(
    env: Environment,
    receivers: readonly Receiver[],
    identity: () => Promise<Kube>,
    notifications: readonly Notification[],
  ): void {
    const { namespace, name } = env.metadata
    receivers.forEach((receiver, index) => {
      const named = `receiver ${index + 1} (${receiver.type}, Secret ${namespace}/${receiver.secretRef.name})`
      const key = `${namespace}/${name}#${index}`
      for (const notification of notifications) {
        if (receiver.events && !receiver.events.includes(notification.event)) continue
        this.enqueue({ env, receiver, named, key, identity, notification })
      }
    })
  }

  /** Resolves once every queued notification was delivered or given up (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.queues.size > 0) await Promise.all([...this.queues.values()].map((q) => q.tail))
  }

  /** Stop waiting between tries: what is still queued is tried once more at most, then given up. */
  close(): void {
    this.closing.abort()
  }

  private enqueue(job: Job): void {
    const queue = this.queues.get(job.key) ?? { tail: Promise.resolve(), waiting: 0 }
    if (queue.waiting >= this.options.maxQueued) {
      this.options.count?.('dropped')
      this.log(job, 'notification dropped: too many waiting for this receiver', 'dropped')
      return
    }
    queue.waiting += 1
    queue.tail = queue.tail
      .then(() => this.deliver(job))
      .finally(() => {
        queue.waiting -= 1
        if (queue.waiting === 0 && this.queues.get(job.key) === queue) this.queues.delete(job.key)
      })
    this.queues.set(job.key, queue)
  }

  private async deliver(job: Job): Promise<void> {
    const { attempts, retryMs } = this.options
    let failure = ''
    let lastTry = false
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        await this.attempt(job)
        this.options.count?.('sent')
        this.log(job, 'notification sent')
        return
      } catch (error: unknown) {
        // A receiver or Secret the user must fix (a stalling error) is not tried again; anything else may pass.
        const retryable = error instanceof DeliveryError ? error.retryable : kindOf(error) !== 'stalling'
        failure = `${messageOf(error)}${attempt > 1 ? ` (after ${attempt} tries)` : ''}`
        if (!retryable || attempt === attempts || lastTry) break
        // Closing cuts the pause short and leaves one more try, however close() and this failure interleave.
        if (this.closed()) {
          lastTry = true
          continue
        }
        await sleep(Math.min(retryMs * 2 ** (attempt - 1), 300_000), this.closing.signal)
        if (this.closed()) lastTry = true
      }
    }
    this.options.count?.('failed')
    const message = `could not tell ${job.named} of ${job.notification.event}: ${failure}`
    this.log(job, message, 'failed')
    await recordEvent(this.options.kube, job.env, 'Warning', 'NotificationFailed', message, this.options.log)
  }

  // A method, not the property: close() may come while a try awaits, which narrowing cannot see.
  private closed(): boolean {
    return this.closing.signal.aborted
  }

  private async attempt(job: Job): Promise<void> {
    const secret = await readSecret(await job.identity(), job.env.metadata.namespace, job.receiver.secretRef.name)
    const { notification: n } = job
    switch (job.receiver.type) {
      case 'webhook':
        await this.post(webhookRequest(n, secret), secret)
        return
      case 'slack':
        await this.post(slackRequest(n, secret), secret)
        return
      case 'github': {
        const key = `${job.key}|${n.digest ?? n.version ?? ''}|${secret.address}`
        const id = await this.deployments.get(key, async () =>
          deploymentId(await this.post(githubDeploymentRequest(n, secret), secret)),
        )
        await this.post(githubStatusRequest(n, secret, id), secret)
        return
      }
    }
  }

  private async post(req: HttpRequest, secret: ReceiverSecret): Promise<string> {
    let answer
    try {
      // No shutdown signal here: closing cuts the pause between tries short, and the last try runs to its deadline.
      answer = await post(req, { ca: secret.ca, timeoutMs: this.options.timeoutMs, guard: this.guard })
    } catch (error: unknown) {
      throw new DeliveryError(messageOf(error), !(error instanceof DeniedAddressError))
    }
    if (answer.status >= 200 && answer.status < 300) return answer.body
    const retryable = answer.status === 408 || answer.status === 429 || answer.status >= 500
    throw new DeliveryError(`the receiver answered HTTP ${answer.status}`, retryable)
  }

  private log(job: Job, msg: string, result?: DeliveryResult): void {
    const { namespace, name } = job.env.metadata
    this.options.log?.({
      msg,
      environment: `${namespace}/${name}`,
      receiver: job.named,
      event: job.notification.event,
      ...(result === 'failed' ? { error: msg } : {}),
    })
  }
}

/** The receiver's Secret: `address` (required), `token`, `ca.crt`. */
async function readSecret(kube: Kube, namespace: string, name: string): Promise<ReceiverSecret> {
  const secret = await readEndpointSecret(kube, namespace, name)
  if (!secret) throw new DeliveryError(`Secret ${namespace}/${name} does not exist`, true)
  const { address, token, ca } = secret
  if (!address) throw new InvalidInputError('InvalidReceiver', `Secret ${namespace}/${name} has no "address"`)
  return { address, token, ca }
}

function deploymentId(body: string): number {
  try {
    const id = (JSON.parse(body) as { id?: unknown }).id
    if (typeof id === 'number') return id
  } catch {
    // Reported below.
  }
  throw new DeliveryError('GitHub created no deployment id', true)
}
