/** `berth package [dir] --version X [-o out.tgz]` */
import { resolve } from 'node:path'
import type { Command } from 'commander'

type Options = { version: string; output?: string; allowSecrets?: boolean; revision?: string; source?: string }

export function registerPackage(program: Command): void {
  program
    .command('package')
    .description('render every environment, validate each object and write the reproducible tar.gz')
    .argument('[dir]', 'config repository (with berth.yaml)', '.')
    .requiredOption('--version <semver>', 'release version, e.g. 1.2.3 (a leading v is dropped)')
    .option('-o, --output <file>', 'where to write the tar.gz (default berth-<version>.tgz)')
    .option('--allow-secrets', 'allow Secrets with literal data in the artifact')
    .option('--revision <ref@sha1:commit>', 'source revision for the metadata (default: from Git)')
    .option('--source <url>', 'config repository URL for the metadata (default: berth.yaml, then Git)')
    .action(async (dir: string, options: Options) => {
      // Loaded on use: `berth --help` and the other commands start without the packager.
      const [{ loadConfig }, { defaultOutput, packageRepository, versionTag }, { provenance }] = await Promise.all([
        import('../packager/config.ts'),
        import('../packager/package.ts'),
        import('../packager/provenance.ts'),
      ])
      const tag = versionTag(options.version)
      const config = await loadConfig(resolve(dir))
      const origin = await provenance(resolve(dir), {
        source: options.source ?? config.artifact.source,
        revision: options.revision,
      })
      const result = await packageRepository({
        dir,
        config,
        version: tag,
        out: options.output ?? defaultOutput(tag),
        ...(options.allowSecrets ? { allowSecrets: true } : {}),
        ...(origin.revision ? { revision: origin.revision } : {}),
        ...(origin.source ? { source: origin.source } : {}),
      })
      const envs = Object.entries(result.metadata.environments)
        .map(([name, e]) => `${name} (${e.objects} object${e.objects === 1 ? '' : 's'})`)
        .join(', ')
      process.stdout.write(`packaged ${result.tag}: ${envs}\n${result.file}  ${result.digest}  ${result.size} bytes\n`)
    })
}
