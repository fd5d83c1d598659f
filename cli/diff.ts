/** `berth diff oci://repo FROM TO [--env NAME] [-o json]`: what a release changes, per environment. */
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { Command } from 'commander'
import type { EnvironmentDiff } from '../shared/artifact-diff.ts'
import { UsageError } from '../shared/errors.ts'
import type { OrasOptions } from '../shared/oras.ts'
import { type Access, accessOf, registryFlags } from './signing.ts'

const OUTPUT_FORMATS = ['text', 'json'] as const
/** `<from>` that means the release just before `<to>`: what a release job summary shows. */
const PREVIOUS = 'previous'

/** The highest published release below `version` (prereleases count), if any. */
async function previousRelease(repository: string, version: string, access: OrasOptions): Promise<string | undefined> {
  const { listTags } = await import('../shared/oras.ts')
  const semver = (await import('semver')).default
  const older = (await listTags(repository, access)).filter((t) => semver.valid(t) && semver.lt(t, version))
  return semver.rsort(older)[0]
}

/** A release read for diffing: its version, digest and files. */
export type Release = { version: string; digest: string; files: Map<string, Buffer> }

/** Where the CLI keeps artifacts it fetched, by digest (as the reconciler's cache). */
export function cliCacheDir(): string {
  return join(process.env.BERTH_CACHE_DIR ?? join(homedir(), '.cache', 'berth'), 'artifacts')
}

/** Resolve `version` in `repository` (host/path) and read its artifact, verified by digest. */
export async function loadRelease(repository: string, version: string, access: OrasOptions): Promise<Release> {
  const { resolve } = await import('../reconciler/source/resolve.ts')
  const { fetchArtifact } = await import('../reconciler/source/fetch.ts')
  const resolved = await resolve(repository, version, undefined, access)
  const files = await fetchArtifact(repository, resolved, access, cliCacheDir())
  return { version: resolved.version, digest: resolved.digest, files }
}

/** The JSON `berth diff -o json` prints: stable key and object order, so it can be compared and stored. */
export function diffDocument(
  repository: string,
  from: Release,
  to: Release,
  environments: readonly EnvironmentDiff[],
): Record<string, unknown> {
  return {
    repository: `oci://${repository}`,
    from: { version: from.version, digest: from.digest },
    to: { version: to.version, digest: to.digest },
    environments,
  }
}

export function registerDiff(program: Command): void {
  registryFlags(
    program
      .command('diff')
      .description(
        'what release <to> changes against <from>, per environment: objects added, removed and changed, '
        + 'each change as a YAML diff (Secret values are never shown)',
      )
      .argument('<repository>', 'artifact repository, oci://registry/path')
      .argument('<from>', 'the release before, e.g. 1.0.0; `previous`: the highest release below <to>')
      .argument('<to>', 'the release after, e.g. 1.1.0')
      .option('--env <name>', 'only this environment (a folder of the artifact)')
      .option('-o, --output <format>', 'text or json', 'text'),
  ).action(
    async (url: string, fromVersion: string, toVersion: string, options: Access & { env?: string; output: string }) => {
      if (!(OUTPUT_FORMATS as readonly string[]).includes(options.output))
        throw new UsageError('InvalidOutput', `-o ${options.output}: use text or json`)
      // Loaded only for this command: every other one starts without them (zod, semver and the YAML libraries).
      const { repositoryPath } = await import('../shared/artifact.ts')
      const repository = repositoryPath(url)
      if (!repository) throw new UsageError('InvalidRepository', `${url}: write the repository as oci://registry/path`)
      const access = accessOf(options)
      const { diffArtifacts, formatDiff } = await import('../shared/artifact-diff.ts')
      const to = await loadRelease(repository, toVersion, access)
      const before = fromVersion === PREVIOUS ? await previousRelease(repository, to.version, access) : fromVersion
      if (before === undefined) {
        process.stdout.write(`${url}: ${to.version} is the first release; nothing to compare it with\n`)
        return
      }
      const from = await loadRelease(repository, before, access)
      const environments = diffArtifacts(from, to, options.env)
      if (options.env !== undefined && environments.length === 0) {
        const all = diffArtifacts(from, to).map((d) => d.environment)
        throw new UsageError(
          'UnknownEnvironment',
          `--env ${options.env}: neither release has it (they have: ${all.join(', ') || 'none'})`,
        )
      }
      if (options.output === 'json') {
        process.stdout.write(`${JSON.stringify(diffDocument(repository, from, to, environments), null, 2)}\n`)
        return
      }
      const header = `${url}: ${from.version} (${from.digest}) → ${to.version} (${to.digest})\n`
      process.stdout.write(header + formatDiff(environments))
    },
  )
}
