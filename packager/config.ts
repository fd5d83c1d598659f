/**
 * The config-repository contract: `berth.yaml` at the root names the artifact repository and
 * the environments, each rendered from one source — a folder of plain YAML, a kustomize
 * overlay, or a Helm chart with values files.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CORE_SCHEMA, load, YAMLException } from 'js-yaml'
import { z } from 'zod'
import { InvalidInputError, UsageError } from '../shared/errors.ts'
import { OCI_REPOSITORY } from '../shared/artifact.ts'
import { DNS_LABEL, formatIssues } from '../shared/validation.ts'

export const CONFIG_FILE = 'berth.yaml'

const relativePath = z
  .string()
  .min(1, 'give a folder relative to berth.yaml')
  .refine(
    (p) => !p.startsWith('/') && !p.split(/[\\/]/).includes('..'),
    'must be a path inside the config repository (relative, no "..")',
  )

const helmSource = z.strictObject({
  chart: relativePath.describe('folder of the chart'),
  values: z.array(relativePath).default([]),
  releaseName: z.string().regex(DNS_LABEL, 'must be a DNS label (lowercase letters, digits, "-")').optional(),
  namespace: z.string().regex(DNS_LABEL, 'must be a DNS label (lowercase letters, digits, "-")').optional(),
})

const environment = z
  .strictObject({
    manifests: relativePath.optional(),
    kustomize: relativePath.optional(),
    helm: helmSource.optional(),
  })
  .refine((e) => [e.manifests, e.kustomize, e.helm].filter((s) => s !== undefined).length === 1, {
    message:
      'give exactly one source: manifests (a folder of YAML), kustomize (an overlay folder) or helm (chart and values)',
  })

export const configSchema = z.strictObject({
  apiVersion: z.literal('berth.dev/v1alpha1', 'must be berth.dev/v1alpha1'),
  kind: z.literal('Package', 'must be Package'),
  artifact: z.strictObject({
    repository: z
      .string()
      .regex(
        OCI_REPOSITORY,
        'must be oci://<registry>/<path>, lowercase path, no tag (for example oci://ghcr.io/acme/app-config)',
      ),
    source: z.url('must be a URL (the config repository, for org.opencontainers.image.source)').optional(),
  }),
  environments: z
    .record(z.string(), environment)
    .refine((envs) => Object.keys(envs).length > 0, 'name at least one environment')
    // Checked here rather than by the record's key schema: zod reports a bad key without its message.
    .superRefine((envs, ctx) => {
      for (const name of Object.keys(envs)) {
        if (!DNS_LABEL.test(name))
          ctx.addIssue({
            code: 'custom',
            path: [name],
            message: 'environment names must be DNS labels (lowercase letters, digits, "-")',
          })
      }
    }),
})

export type PackageConfig = z.infer<typeof configSchema>
export type EnvironmentSource = PackageConfig['environments'][string]

/** Read and validate `<dir>/berth.yaml`. Errors name the field and what to do. */
export async function loadConfig(dir: string): Promise<PackageConfig> {
  const file = join(dir, CONFIG_FILE)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error: unknown) {
    throw new UsageError(
      'NoConfig',
      `no ${CONFIG_FILE} in ${dir}: berth package needs a config repository with a ${CONFIG_FILE} at its root`,
      { cause: error },
    )
  }
  let document: unknown
  try {
    // js-yaml, as for manifests: the `yaml` package would be one more library loaded by every push.
    document = load(text, { schema: CORE_SCHEMA })
  } catch (error: unknown) {
    const where = error instanceof YAMLException ? `:${error.mark.line + 1}:${error.mark.column + 1}` : ''
    const reason = error instanceof YAMLException ? error.reason : String(error)
    throw new InvalidInputError('InvalidConfig', `${file}${where}: not valid YAML: ${reason}`, { cause: error })
  }
  const parsed = configSchema.safeParse(document)
  if (!parsed.success) throw new InvalidInputError('InvalidConfig', `${file}: ${formatIssues(parsed.error)}`)
  return parsed.data
}
