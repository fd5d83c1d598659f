import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { parse } from 'yaml'
import { describe, expect, it } from 'vitest'
import { ROOT, useGround } from './support/ground.ts'
import { failureOf, type ProcessFailure } from './support/failure.ts'

const g = useGround(import.meta.url)
const run = promisify(execFile)

describe('the release workflow', () => {
  it('passes actionlint', async () => {
    const { stdout } = await run(g.ground.parts.actionlint, ['-no-color', '.github/workflows/release.yml'], {
      cwd: ROOT,
    })
    expect(stdout).toBe('')
  })

  it('actionlint does catch a broken workflow (so the check above can fail)', async () => {
    const broken = join(g.scratch(), 'broken.yml')
    await writeFile(
      broken,
      'on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope.value }}\n        uses: actions/checkout@v4\n',
    )
    const failed = await failureOf<ProcessFailure>(run(g.ground.parts.actionlint, ['-no-color', broken]))
    expect(failed.code).toBe(1)
    expect(failed.stdout).toMatch(/broken\.yml:\d+:\d+:/)
  })

  it('runs on a published release with least privilege and publishes with berth push', async () => {
    const workflow = parse(await readFile(join(ROOT, '.github/workflows/release.yml'), 'utf8')) as {
      on: { release: { types: string[] } }
      permissions: Record<string, string>
      jobs: { publish: { steps: Array<{ run?: string; uses?: string; id?: string }> } }
    }
    expect(workflow.on.release.types).toEqual(['published'])
    expect(workflow.permissions).toEqual({ contents: 'read', packages: 'write' })
    const steps = workflow.jobs.publish.steps
    expect(steps.map((s) => s.uses?.split('@')[0]).filter(Boolean)).toEqual([
      'actions/checkout',
      'actions/setup-node',
      'oras-project/setup-oras',
    ])
    expect(steps.find((s) => s.id === 'push')?.run).toContain('node bin/berth.js "${args[@]}"')
  })

  it('signs with the key from a repository secret and puts the signature in the job summary', async () => {
    const text = await readFile(join(ROOT, '.github/workflows/release.yml'), 'utf8')
    const workflow = parse(text) as {
      jobs: { publish: { steps: Array<{ id?: string; run?: string; env?: Record<string, string> }> } }
    }
    const push = workflow.jobs.publish.steps.find((s) => s.id === 'push')
    expect(push?.env).toMatchObject({
      COSIGN_PRIVATE_KEY: '${{ secrets.COSIGN_PRIVATE_KEY }}',
      BERTH_COSIGN_PASSWORD: '${{ secrets.COSIGN_PASSWORD }}',
    })
    expect(push?.run).toContain('args+=(--sign --key env://COSIGN_PRIVATE_KEY)')
    expect(push?.run).toContain('| \\`$signature\\` |')
    expect(push?.run).toContain('>> "$GITHUB_STEP_SUMMARY"')
  })
})
