/**
 * Where a release comes from, for the OCI annotations: the config repository's URL
 * (`source`), `<tag or branch>@sha1:<commit>` (`revision`, Flux's form), and the time it was
 * made (`created`). Explicit values win, then GitHub Actions' environment, then the Git
 * checkout itself. `created` is never "now" while a commit time or SOURCE_DATE_EPOCH exists:
 * a timestamp of now would change the digest of every re-run.
 */
import { execa } from 'execa'
import { UsageError } from '../shared/errors.ts'

export type Provenance = {
  source?: string
  revision?: string
  created: string
  createdFrom: 'SOURCE_DATE_EPOCH' | 'commit' | 'now'
}

export const REVISION_FORMAT = /^[^@\s]+@sha1:[0-9a-f]{40}$/

export type Given = { source?: string | undefined; revision?: string | undefined }

export async function provenance(dir: string, given: Given, env: NodeJS.ProcessEnv = process.env): Promise<Provenance> {
  if (given.revision !== undefined && !REVISION_FORMAT.test(given.revision)) {
    throw new UsageError(
      'InvalidRevision',
      `--revision "${given.revision}" must be <tag or branch>@sha1:<40-hex commit>, for example v1.2.3@sha1:${'0'.repeat(40)}`,
    )
  }
  const source = given.source ?? githubSource(env)
  const revision = given.revision ?? githubRevision(env)
  const epoch = sourceDateEpoch(env)
  // Git is asked only what nothing more explicit answers: at most two processes, run together.
  const [remote, head] = await Promise.all([
    source === undefined ? gitRemote(dir) : undefined,
    revision === undefined || epoch === undefined ? gitHead(dir) : undefined,
  ])
  const found = source ?? remote
  const created: Pick<Provenance, 'created' | 'createdFrom'> = epoch !== undefined
    ? { created: rfc3339(epoch), createdFrom: 'SOURCE_DATE_EPOCH' }
    : head
      ? { created: rfc3339(head.committed), createdFrom: 'commit' }
      : { created: rfc3339(Math.floor(Date.now() / 1000)), createdFrom: 'now' }
  const from = revision ?? (head ? `${head.ref}@sha1:${head.sha}` : undefined)
  return { ...(found ? { source: withoutCredentials(found) } : {}), ...(from ? { revision: from } : {}), ...created }
}

function githubSource(env: NodeJS.ProcessEnv): string | undefined {
  return env.GITHUB_SERVER_URL && env.GITHUB_REPOSITORY
    ? `${env.GITHUB_SERVER_URL}/${env.GITHUB_REPOSITORY}`
    : undefined
}

function githubRevision(env: NodeJS.ProcessEnv): string | undefined {
  return env.GITHUB_SHA && env.GITHUB_REF_NAME && /^[0-9a-f]{40}$/.test(env.GITHUB_SHA)
    ? `${env.GITHUB_REF_NAME}@sha1:${env.GITHUB_SHA}`
    : undefined
}

function sourceDateEpoch(env: NodeJS.ProcessEnv): number | undefined {
  const epoch = env.SOURCE_DATE_EPOCH
  if (epoch === undefined || epoch === '') return undefined
  if (!/^\d+$/.test(epoch))
    throw new UsageError('InvalidSourceDateEpoch', `SOURCE_DATE_EPOCH="${epoch}" must be whole seconds since 1970`)
  return Number(epoch)
}

async function git(dir: string, args: string[]): Promise<string | undefined> {
  try {
    const { stdout } = await execa('git', ['-C', dir, ...args], { stdin: 'ignore' })
    return stdout.trim() || undefined
  } catch {
    return undefined
  }
}

async function gitRemote(dir: string): Promise<string | undefined> {
  const url = await git(dir, ['config', '--get', 'remote.origin.url'])
  if (!url) return undefined
  // git@github.com:acme/app.git → https://github.com/acme/app
  const scp = /^[\w.-]+@([\w.-]+):(.+?)(\.git)?$/.exec(url)
  if (scp) return `https://${scp[1] ?? ''}/${scp[2] ?? ''}`
  return /^https?:\/\//.test(url) ? url.replace(/\.git$/, '') : undefined
}

type Head = { sha: string; committed: number; ref: string }

/**
 * The checked-out commit in one git call: its hash, commit time and the refs pointing at it
 * (`HEAD -> main, tag: v1.2.3, origin/main`). The ref named in the revision is a tag on the
 * commit (a version-like one first), else the branch, else `HEAD` (a detached checkout).
 */
async function gitHead(dir: string): Promise<Head | undefined> {
  const out = await git(dir, ['show', '-s', '--format=%H %ct%n%D', 'HEAD'])
  const [first = '', decorations = ''] = out?.split('\n') ?? []
  const [sha = '', committed = ''] = first.split(' ')
  if (!/^[0-9a-f]{40}$/.test(sha) || !/^\d+$/.test(committed)) return undefined
  const refs = decorations.split(', ').filter((r) => r !== '')
  const tags = refs.filter((r) => r.startsWith('tag: ')).map((r) => r.slice('tag: '.length))
  const branch = refs.find((r) => r.startsWith('HEAD -> '))?.slice('HEAD -> '.length)
  const tag = tags.find((t) => /^v?\d+\.\d+\.\d+/.test(t)) ?? tags[0]
  return { sha, committed: Number(committed), ref: tag ?? branch ?? 'HEAD' }
}

function rfc3339(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/** Drop `user:token@` from a URL: CI remotes often carry a token. */
export function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url)
    parsed.username = ''
    parsed.password = ''
    return parsed.toString().replace(/\/$/, '')
  } catch {
    return url
  }
}
