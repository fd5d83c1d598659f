/** `berth push [dir|file.tgz] --version X [--repository oci://…]` */
import type { Command } from 'commander'
import { UsageError } from '../shared/errors.ts'
import { signingKey } from './signing.ts'

type Options = {
  version: string
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
    .requiredOption('--version <semver>', 'release version, e.g. 1.2.3 (a leading v is dropped)')
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
      const username = process.env.BERTH_REGISTRY_USERNAME
      const password = process.env.BERTH_REGISTRY_PASSWORD
      if ((username === undefined) !== (password === undefined)) {
        throw new UsageError(
          'PartialCredentials',
          'set both BERTH_REGISTRY_USERNAME and BERTH_REGISTRY_PASSWORD, or neither',
        )
      }
      if (options.sign && !options.key) throw new UsageError('NoKey', '--sign needs --key <cosign.key|env://VAR>')
      // The key is read (and its password checked) before anything is pushed.
      const signWith = options.sign && options.key ? await signingKey(options.key) : undefined
      const { publish } = await import('../packager/publish.ts')
      const result = await publish({
        input,
        version: options.version,
        ...(options.repository ? { repository: options.repository } : {}),
        ...(options.source ? { source: options.source } : {}),
        ...(options.revision ? { revision: options.revision } : {}),
        ...(options.allowSecrets ? { allowSecrets: true } : {}),
        access: {
          ...(options.plainHttp ? { plainHttp: true } : {}),
          ...(options.caFile ? { caFile: options.caFile } : {}),
          ...(options.insecure ? { insecure: true } : {}),
          ...(options.registryConfig ? { registryConfig: options.registryConfig } : {}),
        },
        ...(username !== undefined && password !== undefined ? { credentials: { username, password } } : {}),
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
