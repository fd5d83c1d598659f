/** `berth push [dir|file.tgz] --version X [--repository oci://…]` */
import type { Command } from 'commander'
import type { RegistryAccess } from '../shared/oras.ts'
import { UsageError } from '../shared/errors.ts'
import { decryptingKey } from './signing.ts'
import { count } from './flags.ts'

type Options = {
  version?: string
  preview?: number
  repository?: string
  source?: string
  revision?: string
  allowSecrets?: boolean
  plainHttp?: boolean
  caFile?: string
  insecure?: boolean
  registryConfig?: string
  output: string
  sign?: boolean
  key?: string
}

const OUTPUT_FORMATS = ['text', 'json'] as const

export function registerPush(program: Command): void {
  program
    .command('push')
    .description('publish a release as an immutable OCI artifact tagged with its semver')
    .argument('[input]', 'config repository folder (packaged first) or a tar.gz from berth package', '.')
    .option('--version <semver>', 'release version, e.g. 1.2.3 (a leading v is dropped)')
    .option(
      '--preview <number>',
      'instead of --version: publish a preview of pull request <number>, as 0.0.0-pr.<number>.<push> (the next push)',
      count(1),
    )
    .option('--repository <oci://registry/path>', 'artifact repository (default: berth.yaml artifact.repository)')
    .option('--source <url>', 'config repository URL (org.opencontainers.image.source)')
    .option(
      '--revision <ref@sha1:commit>',
      'source revision (org.opencontainers.image.revision; default from GitHub Actions or Git)',
    )
    .option('--allow-secrets', 'allow Secrets with literal data in the artifact')
    .option('--plain-http', 'the registry speaks plain HTTP')
    .option('--ca-file <file>', 'CA bundle that signed the registry certificate')
    .option('--insecure', 'do not verify the registry certificate')
    .option('--registry-config <file>', 'credentials file (Docker config format; default: oras/Docker lookup)')
    .option('--sign', 'sign the pushed digest (cosign key-based format) with --key')
    .option('--key <file|env://VAR>', 'cosign private key for --sign; its password from BERTH_COSIGN_PASSWORD')
    .option('-o, --output <format>', 'text or json', 'text')
    .addHelpText(
      'after',
      '\nCredentials: BERTH_REGISTRY_USERNAME and BERTH_REGISTRY_PASSWORD, when set, are used instead of the credentials file.',
    )
    .action(async (input: string, options: Options) => {
      if (!(OUTPUT_FORMATS as readonly string[]).includes(options.output))
        throw new UsageError('InvalidOutput', `-o ${options.output}: use text or json`)
      const credentials = environmentCredentials()
      if ((options.version === undefined) === (options.preview === undefined))
        throw new UsageError('VersionOrPreview', 'give --version <semver> for a release or --preview <number> for a pull request')
      if (options.sign && !options.key) throw new UsageError('NoKey', '--sign needs --key <cosign.key|env://VAR>')
      // The key's scrypt (~270 ms of CPU) starts before the release's modules load, on the core their loading leaves
      // idle; later it would compete with the renders for both. Publish waits for the key before anything is pushed.
      const signWith = options.sign && options.key ? (await decryptingKey(options.key)).key : undefined
      const { publish } = await import('../packager/publish.ts')
      const result = await publish({
        input,
        ...(options.version === undefined ? {} : { version: options.version }),
        ...(options.preview === undefined ? {} : { preview: options.preview }),
        ...(options.repository ? { repository: options.repository } : {}),
        ...(options.source ? { source: options.source } : {}),
        ...(options.revision ? { revision: options.revision } : {}),
        ...(options.allowSecrets ? { allowSecrets: true } : {}),
        access: registryAccess(options),
        ...(credentials ? { credentials } : {}),
        progress: (line) => process.stderr.write(`berth: ${line}\n`),
        ...(signWith ? { signWith } : {}),
      })
      if (options.output === 'json') {
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
      } else {
        process.stdout.write(
          `${result.alreadyPublished ? 'already published' : 'published'} ${result.reference}\ndigest ${result.digest}\n`
          + (result.signature ? `signature ${result.signature}\n` : ''),
        )
      }
    })
}

type UnpublishOptions = {
  preview: number
  repository?: string
  plainHttp?: boolean
  caFile?: string
  insecure?: boolean
  registryConfig?: string
}

export function registerUnpublish(program: Command): void {
  program
    .command('unpublish')
    .description('delete a closed pull request\'s previews from the registry (never a release)')
    .argument('[input]', 'config repository folder (for berth.yaml\'s artifact.repository)', '.')
    .requiredOption('--preview <number>', 'the pull request whose previews (0.0.0-pr.<number>.*) go', count(1))
    .option('--repository <oci://registry/path>', 'artifact repository (default: berth.yaml artifact.repository)')
    .option('--plain-http', 'the registry speaks plain HTTP')
    .option('--ca-file <file>', 'CA bundle that signed the registry certificate')
    .option('--insecure', 'do not verify the registry certificate')
    .option('--registry-config <file>', 'credentials file (Docker config format; default: oras/Docker lookup)')
    .action(async (input: string, options: UnpublishOptions) => {
      const credentials = environmentCredentials()
      const [{ unpublishPreviews }, { ociRepository }, { loadConfig }] = await Promise.all([
        import('../packager/unpublish.ts'),
        import('../packager/publish.ts'),
        import('../packager/config.ts'),
      ])
      const url = options.repository ?? (await loadConfig(input)).artifact.repository
      const deleted = await unpublishPreviews({
        repository: ociRepository(url),
        preview: options.preview,
        access: registryAccess(options),
        ...(credentials ? { credentials } : {}),
        progress: (line) => process.stderr.write(`berth: ${line}\n`),
      })
      process.stdout.write(
        deleted.length > 0
          ? `${deleted.map((v) => `deleted ${v}`).join('\n')}\n`
          : `pull request ${options.preview} has no previews: nothing deleted\n`,
      )
    })
}

/** How the registry flags say to reach it. */
function registryAccess(options: {
  plainHttp?: boolean
  caFile?: string
  insecure?: boolean
  registryConfig?: string
}): RegistryAccess {
  return {
    ...(options.plainHttp ? { plainHttp: true } : {}),
    ...(options.caFile ? { caFile: options.caFile } : {}),
    ...(options.insecure ? { insecure: true } : {}),
    ...(options.registryConfig ? { registryConfig: options.registryConfig } : {}),
  }
}

/** BERTH_REGISTRY_USERNAME and BERTH_REGISTRY_PASSWORD, both or neither. */
function environmentCredentials(): { username: string; password: string } | undefined {
  const username = process.env.BERTH_REGISTRY_USERNAME
  const password = process.env.BERTH_REGISTRY_PASSWORD
  if ((username === undefined) !== (password === undefined)) {
    throw new UsageError('PartialCredentials', 'set both BERTH_REGISTRY_USERNAME and BERTH_REGISTRY_PASSWORD, or neither')
  }
  return username !== undefined && password !== undefined ? { username, password } : undefined
}
