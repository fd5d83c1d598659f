import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { provenance } from './provenance.ts'

/** A real Git checkout: one commit made at a fixed time, a remote URL carrying a token. */
let dir: string
let sha: string
const git = async (...args: string[]): Promise<string> =>
  (
    await execa('git', ['-C', dir, ...args], {
      env: { GIT_COMMITTER_DATE: '@1700000000', GIT_AUTHOR_DATE: '@1700000000' },
    })
  ).stdout

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-provenance-'))
  await git('init', '-q', '-b', 'main')
  await git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '--allow-empty', '-m', 'config')
  await git('remote', 'add', 'origin', 'https://x-access-token:secret@github.com/acme/shop-config.git')
  sha = await git('rev-parse', 'HEAD')
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('provenance from the Git checkout', () => {
  it('names the branch, the commit, its time and the remote without its token', async () => {
    expect(await provenance(dir, {}, {})).toStrictEqual({
      source: 'https://github.com/acme/shop-config',
      revision: `main@sha1:${sha}`,
      created: '2023-11-14T22:13:20Z',
      createdFrom: 'commit',
    })
  })

  it('prefers a version tag on the commit over the branch and other tags; a detached checkout names the tag', async () => {
    await git('tag', 'latest')
    await git('tag', 'v1.4.0')
    expect((await provenance(dir, {}, {})).revision).toBe(`v1.4.0@sha1:${sha}`)
    await git('checkout', '-q', '--detach')
    expect((await provenance(dir, {}, {})).revision).toBe(`v1.4.0@sha1:${sha}`)
    await git('tag', '-d', 'v1.4.0', 'latest')
    expect((await provenance(dir, {}, {})).revision).toBe(`HEAD@sha1:${sha}`)
    await git('checkout', '-q', 'main')
  })

  it('lets explicit values, then GitHub Actions and SOURCE_DATE_EPOCH, win over Git', async () => {
    const github = {
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_REPOSITORY: 'acme/other',
      GITHUB_SHA: 'b'.repeat(40),
      GITHUB_REF_NAME: 'v2.0.0',
      SOURCE_DATE_EPOCH: '1600000000',
    }
    expect(await provenance(dir, {}, github)).toStrictEqual({
      source: 'https://github.com/acme/other',
      revision: `v2.0.0@sha1:${'b'.repeat(40)}`,
      created: '2020-09-13T12:26:40Z',
      createdFrom: 'SOURCE_DATE_EPOCH',
    })
    const given = { source: 'https://example.com/c', revision: `r@sha1:${'c'.repeat(40)}` }
    expect(await provenance(dir, given, github)).toMatchObject(given)
  })

  it('outside a checkout: no source, no revision, created now (and says so)', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'berth-no-git-'))
    try {
      const before = Math.floor(Date.now() / 1000) * 1000
      const found = await provenance(outside, {}, {})
      expect(found.createdFrom).toBe('now')
      expect(found).not.toHaveProperty('source')
      expect(found).not.toHaveProperty('revision')
      expect(Date.parse(found.created)).toBeGreaterThanOrEqual(before)
    } finally {
      await rm(outside, { recursive: true, force: true })
    }
  })

  it('refuses a malformed revision or SOURCE_DATE_EPOCH', async () => {
    await expect(provenance(dir, { revision: 'main' }, {})).rejects.toThrow(/must be <tag or branch>@sha1/)
    await expect(provenance(dir, {}, { SOURCE_DATE_EPOCH: 'yesterday' })).rejects.toThrow(/whole seconds/)
  })
})
