/**
 * What each receiver type is sent for one notification: the HTTP requests, built from the
 * notification and the receiver's Secret, pure so the exact shapes are unit-tested.
 *
 * - webhook: one POST of the notification itself as JSON (README: Notifications).
 * - slack: one POST in the shape of Slack's incoming webhooks (`text` plus Block Kit blocks).
 * - github: GitHub's REST deployments API against the repository in `address`: a deployment of
 *   the artifact's commit (its revision annotation) for the environment, then a status on it.
 */
import { InvalidInputError } from '../../shared/errors.ts'
import { BERTH } from '../../shared/package-info.ts'
import type { NotifyEvent } from '../../api/notify-events.ts'
import type { HttpRequest } from '../outbound/http-post.ts'
import type { Notification } from './notify.ts'

export type ReceiverType = 'webhook' | 'slack' | 'github'

/** What the receiver's Secret holds: `address`, optional `token` and `ca.crt`. */
export type ReceiverSecret = { address: string; token?: string | undefined; ca?: string | undefined }

const USER_AGENT = `berth/${BERTH.version}`

/** One line that says what happened: Slack's text and GitHub's description. */
export function summary(n: Notification): string {
  const where = `${n.namespace}/${n.environment}${n.cluster ? ` (${n.cluster})` : ''}`
  const version = n.version ?? 'no version'
  const lines: Record<NotifyEvent, string> = {
    Applied: `applied ${version}${n.previousVersion ? ` (was ${n.previousVersion})` : ''}`,
    Ready: `${version} is Ready`,
    Failed: `${version} failed: ${n.reason}`,
    RolledBack: `rolled back${n.previousVersion ? ` from ${n.previousVersion}` : ''} to ${version}`,
    DriftCorrected: `drift corrected on ${version}`,
    Suspended: 'suspended',
    Resumed: 'resumed',
    Overridden: `${version} lands by override: ${n.message}`,
    Held: `a new version is held (${n.reason}), ${version} keeps running: ${n.message}`,
  }
  return `${where}: ${lines[n.event]}`
}

/** The webhook body: every field of the notification, in a fixed order, absent ones left out. */
export function webhookRequest(n: Notification, secret: ReceiverSecret): HttpRequest {
  const body = {
    event: n.event,
    environment: n.environment,
    namespace: n.namespace,
    cluster: n.cluster,
    version: n.version,
    digest: n.digest,
    revision: n.revision,
    previousVersion: n.previousVersion,
    result: n.result,
    reason: n.reason,
    message: n.message,
    promotedBy: n.promotedBy,
    time: n.time,
  }
  return { url: secret.address, headers: jsonHeaders(secret.token), body: JSON.stringify(body) }
}

const SLACK_ICONS = { success: ':white_check_mark:', failure: ':x:', info: ':information_source:' } as const

/** Slack incoming webhook: a plain `text` for notifications, blocks for the channel. */
export function slackRequest(n: Notification, secret: ReceiverSecret): HttpRequest {
  const line = `${SLACK_ICONS[n.result]} ${escapeSlack(summary(n))}`
  const details = [
    n.previousVersion && n.event !== 'Applied' && n.event !== 'RolledBack' ? `previous ${n.previousVersion}` : '',
    n.promotedBy ? `promoted by ${n.promotedBy}` : '',
    n.digest ? `\`${n.digest.slice(0, 'sha256:'.length + 12)}\`` : '',
    n.revision ? `revision ${n.revision}` : '',
  ].filter((d) => d !== '')
  const blocks: object[] = [{ type: 'section', text: { type: 'mrkdwn', text: `*${line}*` } }]
  if (n.message) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: escapeSlack(n.message) } })
  if (details.length > 0)
    blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: escapeSlack(details.join(' · ')) }] })
  return { url: secret.address, headers: jsonHeaders(secret.token), body: JSON.stringify({ text: line, blocks }) }
}

/** Slack's mrkdwn reserves these three; everything else is text. */
function escapeSlack(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')
}

/** The GitHub deployment status each event sets. */
export const GITHUB_STATES: Record<NotifyEvent, 'in_progress' | 'success' | 'failure' | 'inactive'> = {
  Applied: 'in_progress',
  Ready: 'success',
  Failed: 'failure',
  RolledBack: 'in_progress',
  DriftCorrected: 'success',
  Suspended: 'inactive',
  Resumed: 'in_progress',
  Overridden: 'in_progress',
  // The version the deployment is for keeps running as it did.
  Held: 'success',
}

/**
 * GitHub's API base for the repository in `address`: `https://github.com/<owner>/<repo>` is
 * `https://api.github.com/repos/<owner>/<repo>`; any other host is GitHub Enterprise Server,
 * `https://<host>/api/v3/repos/<owner>/<repo>`.
 */
export function githubApi(address: string): string {
  let url: URL
  try {
    url = new URL(address)
  } catch {
    throw notARepository()
  }
  const [owner, repo] = url.pathname.replace(/^\/|\/$/g, '').replace(/\.git$/, '').split('/')
  if (!owner || !repo)
    throw notARepository()
  const base = url.host === 'github.com' ? 'https://api.github.com' : `${url.protocol}//${url.host}/api/v3`
  return `${base}/repos/${owner}/${repo}`
}

function notARepository(): InvalidInputError {
  return new InvalidInputError('InvalidReceiver', 'github: "address" must be the repository URL, https://github.com/<owner>/<repo>')
}

/** The commit of a revision `<ref>@sha1:<commit>`. */
export function commitOf(n: Notification): string {
  const commit = /@sha1:([0-9a-f]{40})$/.exec(n.revision ?? '')?.[1]
  if (!commit) {
    throw new InvalidInputError(
      'NoRevision',
      `github: ${n.version ?? 'this version'} names no commit (its artifact has no revision annotation); `
      + 'publish with berth push from a Git checkout or with --revision',
    )
  }
  return commit
}

/** The GitHub environment: `<namespace>/<name>`, after the cluster name when there is one. */
export function githubEnvironment(n: Notification): string {
  return `${n.cluster ? `${n.cluster}/` : ''}${n.namespace}/${n.environment}`
}

/** Create a deployment of the notification's commit for its environment. */
export function githubDeploymentRequest(n: Notification, secret: ReceiverSecret): HttpRequest {
  const body = {
    ref: commitOf(n),
    environment: githubEnvironment(n),
    description: clip(summary(n)),
    auto_merge: false,
    required_contexts: [],
    payload: { version: n.version, digest: n.digest },
  }
  return { url: `${githubApi(secret.address)}/deployments`, headers: githubHeaders(secret.token), body: JSON.stringify(body) }
}

/** A status on deployment `id`: what the event means for that deployment. */
export function githubStatusRequest(n: Notification, secret: ReceiverSecret, id: number): HttpRequest {
  const body = {
    state: GITHUB_STATES[n.event],
    environment: githubEnvironment(n),
    description: clip(summary(n)),
  }
  return {
    url: `${githubApi(secret.address)}/deployments/${id}/statuses`,
    headers: githubHeaders(secret.token),
    body: JSON.stringify(body),
  }
}

// GitHub refuses descriptions over 140 characters.
function clip(text: string): string {
  return text.length > 140 ? `${text.slice(0, 139)}…` : text
}

function jsonHeaders(token: string | undefined): Record<string, string> {
  return {
    'content-type': 'application/json',
    'user-agent': USER_AGENT,
    ...(token ? { authorization: `Bearer ${token}` } : {}),
  }
}

function githubHeaders(token: string | undefined): Record<string, string> {
  return {
    ...jsonHeaders(token),
    'accept': 'application/vnd.github+json',
    'x-github-api-version': '2022-11-28',
  }
}
