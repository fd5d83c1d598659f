import { execFile } from 'node:child_process'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { parse } from 'yaml'
import { describe, expect, it } from 'vitest'
import { ROOT, useGround } from './support/ground.ts'
import { failureOf, type ProcessFailure } from './support/failure.ts'
import { exampleRepo } from './support/config-repo.ts'
import { type Action, readAction, runCompositeAction } from './support/action.ts'

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

  it('actionlint checks the workflow against the action: an input action.yml does not have is caught', async () => {
    const text = await readFile(join(ROOT, '.github/workflows/release.yml'), 'utf8')
    const broken = join(ROOT, '.github/workflows/broken-for-test.yml')
    await writeFile(broken, text.replace('signing-key:', 'signing-keys:'))
    try {
      const failed = await failureOf<ProcessFailure>(
        run(g.ground.parts.actionlint, ['-no-color', broken], { cwd: ROOT }),
      )
      expect(failed.stdout).toMatch(/input "signing-keys" is not defined in action/)
    } finally {
      await rm(broken, { force: true })
    }
  })

  it('builds and pushes berth\'s image for a release of berth, through the image action, tagged with the release', async () => {
    const workflow = parse(await readFile(join(ROOT, '.github/workflows/release.yml'), 'utf8')) as {
      jobs: { image: { steps: Array<{ uses?: string; with?: Record<string, string> }> } }
    }
    const steps = workflow.jobs.image.steps
    expect(steps.map((s) => s.uses?.split('@')[0])).toEqual(['actions/checkout', './.github/actions/image'])
    expect(steps[1]?.with).toMatchObject({
      'version': '${{ github.event.release.tag_name }}',
      'registry-password': '${{ secrets.GITHUB_TOKEN }}',
    })
    const action = await readAction(join(ROOT, '.github/actions/image/action.yml'))
    const script = action.runs.steps[0]?.run ?? ''
    expect(script).toContain('buildah build --quiet --timestamp 0')
    expect(script).toContain('--file "$BERTH_HOME/Dockerfile"')
  })

  it('runs on a published release with least privilege and publishes through berth\'s own action', async () => {
    const workflow = parse(await readFile(join(ROOT, '.github/workflows/release.yml'), 'utf8')) as {
      on: { release: { types: string[] } }
      permissions: Record<string, string>
      jobs: { publish: { steps: Array<{ uses?: string; id?: string; with?: Record<string, string> }> } }
    }
    expect(workflow.on.release.types).toEqual(['published'])
    expect(workflow.permissions).toEqual({ contents: 'read', packages: 'write' })
    const steps = workflow.jobs.publish.steps
    expect(steps.map((s) => s.uses?.split('@')[0])).toEqual(['actions/checkout', './'])
    expect(steps.find((s) => s.id === 'push')?.with).toMatchObject({
      'signing-key': '${{ secrets.COSIGN_PRIVATE_KEY }}',
      'signing-password': '${{ secrets.COSIGN_PASSWORD }}',
      'registry-password': '${{ secrets.GITHUB_TOKEN }}',
    })
  })
})

/**
 * The action's steps run as a runner runs them (test/support/action.ts). Node and oras come from the ground instead of
 * the setup actions, and berth is already installed (its install step is checked, not run: it would replace this
 * checkout's node_modules).
 */
describe('the GitHub Action (action.yml)', () => {
  const action = (): Promise<Action> => readAction(join(ROOT, 'action.yml'))
  const runAction = (inputs: Record<string, string>): ReturnType<typeof runCompositeAction> =>
    runCompositeAction(join(ROOT, 'action.yml'), {
      scratch: g.scratch(),
      inputs,
      path: [dirname(g.ground.parts.oras), dirname(process.execPath)],
      skip: ['Install berth'],
    })

  it('is a composite action: Node 24, oras, berth installed without dev dependencies', async () => {
    const spec = await action()
    expect(spec.runs.using).toBe('composite')
    expect(spec.runs.steps.map((s) => s.uses?.split('@')[0]).filter(Boolean)).toEqual([
      'actions/setup-node',
      'oras-project/setup-oras',
    ])
    expect(spec.runs.steps.find((s) => s.name === 'Install berth')?.run).toContain('npm ci --omit=dev')
    expect(Object.keys(spec.outputs)).toEqual(['reference', 'digest', 'signature'])
  })

  it('publishes the config folder to the real registry, gives reference and digest, and summarises the change', async () => {
    const repository = `${g.ground.registries.plain.host}/${g.repository}/shop-config`
    const before = await exampleRepo(join(g.scratch(), 'shop'))
    const first = await runAction({
      'config': before,
      'version': 'v1.0.0',
      'repository': `oci://${repository}`,
      'plain-http': 'true',
    })
    expect(first.outputs).toMatchObject({
      reference: `${repository}:1.0.0`,
      digest: expect.stringMatching(/^sha256:[a-f0-9]{64}$/),
      signature: 'unsigned',
    })
    expect(first.summary).toContain(`### Published ${repository}:1.0.0`)
    expect(first.summary).toContain('1.0.0 is the first release; nothing to compare it with')
    // The registry has exactly what the action says it pushed.
    const { stdout } = await run(g.ground.parts.oras, ['resolve', '--plain-http', `${repository}:1.0.0`])
    expect(stdout.trim()).toBe(first.outputs.digest)

    const deployment = join(before, 'base', 'deployment.yaml')
    await writeFile(deployment, (await readFile(deployment, 'utf8')).replace('shop:2.4.1', 'shop:2.5.0'))
    const second = await runAction({
      'config': before,
      'version': '1.1.0',
      'repository': `oci://${repository}`,
      'plain-http': 'true',
    })
    expect(second.outputs.reference).toBe(`${repository}:1.1.0`)
    expect(second.summary).toContain('### Changes against the previous release')
    expect(second.summary).toContain('prod: 1 changed, 0 added, 0 removed')
    expect(second.summary).toContain('+          image: ghcr.io/acme/shop:2.5.0')
  })
})
