import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadConfig } from './config.ts'

async function configWith(text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-config-'))
  await writeFile(join(dir, 'berth.yaml'), text)
  return dir
}

const header = 'apiVersion: berth.dev/v1alpha1\nkind: Package\nartifact:\n  repository: oci://ghcr.io/acme/app-config\n'

describe('berth.yaml', () => {
  it('accepts the three kinds of source', async () => {
    const dir = await configWith(
      `${header}environments:\n  dev: {manifests: plain}\n  staging: {kustomize: overlays/staging}\n  prod:\n    helm: {chart: chart, values: [prod.yaml]}\n`,
    )
    const config = await loadConfig(dir)
    expect(config.environments).toEqual({
      dev: { manifests: 'plain' },
      staging: { kustomize: 'overlays/staging' },
      prod: { helm: { chart: 'chart', values: ['prod.yaml'] } },
    })
  })

  it.each([
    ['no berth.yaml', null, /no berth\.yaml in .*: berth package needs a config repository/],
    [
      'a repository without oci://',
      'apiVersion: berth.dev/v1alpha1\nkind: Package\nartifact: {repository: ghcr.io/acme/x}\nenvironments: {dev: {manifests: m}}\n',
      /artifact\.repository: must be oci:\/\/<registry>\/<path>/,
    ],
    [
      'two sources in one environment',
      `${header}environments:\n  dev: {manifests: m, kustomize: k}\n`,
      /environments\.dev: give exactly one source/,
    ],
    ['no source', `${header}environments:\n  dev: {}\n`, /environments\.dev: give exactly one source/],
    [
      'a path leaving the repository',
      `${header}environments:\n  dev: {manifests: ../elsewhere}\n`,
      /environments\.dev\.manifests: must be a path inside the config repository/,
    ],
    [
      'an absolute path',
      `${header}environments:\n  dev: {kustomize: /etc}\n`,
      /environments\.dev\.kustomize: must be a path inside/,
    ],
    [
      'an environment name that is not a DNS label',
      `${header}environments:\n  Dev_1: {manifests: m}\n`,
      /environments\.Dev_1: environment names must be DNS labels/,
    ],
    ['no environments', `${header}environments: {}\n`, /environments: name at least one environment/],
    ['an unknown field', `${header}environments: {dev: {manifests: m}}\nextra: 1\n`, /Unrecognized key: "extra"/],
    [
      'a wrong kind',
      'apiVersion: berth.dev/v1alpha1\nkind: Thing\nartifact: {repository: oci://a/b}\nenvironments: {dev: {manifests: m}}\n',
      /kind: must be Package/,
    ],
    ['YAML that does not parse', 'apiVersion: [\n', /not valid YAML/],
  ])('refuses %s, naming the field', async (_label, text, message) => {
    const dir = text === null ? await mkdtemp(join(tmpdir(), 'berth-config-')) : await configWith(text)
    await expect(loadConfig(dir)).rejects.toThrow(message)
  })
})
