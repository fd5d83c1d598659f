import { describe, expect, it } from 'vitest'
import type { Notification } from './notify.ts'
import { commitOf, githubApi, githubStatusRequest, slackRequest, summary } from './payloads.ts'

const base: Notification = {
  event: 'Failed',
  environment: 'prod',
  namespace: 'shop',
  version: '1.2.0',
  result: 'failure',
  reason: 'HealthCheckFailed',
  message: 'Deployment shop/web: 0 of 2 <ready> & waiting',
  time: '2026-11-24T12:00:00.000Z',
}

describe('notification payloads', () => {
  it('GitHub: github.com repositories go to api.github.com, any other host is Enterprise Server', () => {
    expect(githubApi('https://github.com/acme/shop-config')).toBe('https://api.github.com/repos/acme/shop-config')
    expect(githubApi('https://github.com/acme/shop-config.git/')).toBe('https://api.github.com/repos/acme/shop-config')
    expect(githubApi('https://git.example.com/acme/cfg')).toBe('https://git.example.com/api/v3/repos/acme/cfg')
    expect(() => githubApi('https://github.com/acme')).toThrow(/must be the repository URL/)
    expect(() => githubApi('not a url')).toThrow(/must be the repository URL/)
  })

  it('GitHub: the commit comes from the revision; without one the receiver is told why it cannot be used', () => {
    expect(commitOf({ ...base, revision: `v1.2.0@sha1:${'ab'.repeat(20)}` })).toBe('ab'.repeat(20))
    expect(() => commitOf(base)).toThrow(/1\.2\.0 names no commit .*--revision/)
  })

  it('GitHub: descriptions are clipped to the 140 characters GitHub takes', () => {
    const long = { ...base, event: 'Ready' as const, environment: 'e'.repeat(200) }
    const body = JSON.parse(githubStatusRequest(long, { address: 'https://github.com/a/b' }, 7).body) as {
      description: string
    }
    expect(body.description).toHaveLength(140)
    expect(body.description.endsWith('…')).toBe(true)
  })

  it('Slack: text is escaped the way Slack wants (&, <, >); no token, no authorization header', () => {
    const request = slackRequest(base, { address: 'https://hooks.slack.com/services/T/B/X' })
    expect(request.headers).not.toHaveProperty('authorization')
    expect(request.body).toContain('0 of 2 &lt;ready&gt; &amp; waiting')
    expect(summary({ ...base, event: 'RolledBack', previousVersion: '1.3.0' })).toBe(
      'shop/prod: rolled back from 1.3.0 to 1.2.0',
    )
  })
})
