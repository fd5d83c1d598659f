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
  // Each asks git only when nothing more explicit answers; the questions run in parallel.
  const [source, revision, created] = await Promise.all([
    given.source ?? githubSource(env) ?? gitRemote(dir),
    given.revision ?? githubRevision(env) ?? gitRevision(dir),
    createdTime(dir, env),
  ])
  return { ...(source ? { source: withoutCredentials(source) } : {}), ...(revision ? { revision } : {}), ...created }
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

async function git(dir: string, args: string[]): Promise<string | undefined> {
  try {
    const { stdout } = await execa('git', ['-C', dir, ...args], { stdin: 'ignore' })
    return stdout.trim() || undefined
  } catch {
    return undefined
  }
}

async function gitRemote(dir: string): Promise<string | undefined> {
  const url = await git(dir, ['remote', 'get-url', 'origin'])
  if (!url) return undefined
  // git@github.com:acme/app.git → https://github.com/acme/app
  const scp = /^[\w.-]+@([\w.-]+):(.+?)(\.git)?$/.exec(url)
  if (scp) return `https://${scp[1] ?? ''}/${scp[2] ?? ''}`
  return /^https?:\/\//.test(url) ? url.replace(/\.git$/, '') : undefined
}

async function gitRevision(dir: string): Promise<string | undefined> {
  const [sha, tag, branch] = await Promise.all([
    git(dir, ['rev-parse', 'HEAD']),
    git(dir, ['describe', '--tags', '--exact-match', 'HEAD']),
    git(dir, ['rev-parse', '--abbrev-ref', 'HEAD']),
  ])
  if (!sha) return undefined
  const ref = tag ?? branch
  return `${ref && ref !== 'HEAD' ? ref : 'HEAD'}@sha1:${sha}`
}

async function createdTime(dir: string, env: NodeJS.ProcessEnv): Promise<Pick<Provenance, 'created' | 'createdFrom'>> {
  const epoch = env.SOURCE_DATE_EPOCH
  if (epoch !== undefined && epoch !== '') {
    if (!/^\d+$/.test(epoch))
      throw new UsageError('InvalidSourceDateEpoch', `SOURCE_DATE_EPOCH="${epoch}" must be whole seconds since 1970`)
    return { created: rfc3339(Number(epoch)), createdFrom: 'SOURCE_DATE_EPOCH' }
  }
  const commit = await git(dir, ['log', '-1', '--format=%ct'])
  if (commit && /^\d+$/.test(commit)) return { created: rfc3339(Number(commit)), createdFrom: 'commit' }
  return { created: rfc3339(Math.floor(Date.now() / 1000)), createdFrom: 'now' }
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
