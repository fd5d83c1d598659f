/**
 * SOPS-encrypted Secrets in a release: each is kept encrypted, and the file SOPS encrypted it in goes into the
 * artifact as it is, byte for byte (`.sops/<sha256>.yaml`), because SOPS' MAC covers that file: a kustomize overlay
 * that adds a namespace or a label to the Secret changes what the MAC was computed over. The rendered Secret is
 * annotated with where its file lies; in the cluster the file is decrypted (its MAC checked) and the rendered
 * Secret's encrypted values must be exactly the file's.
 */
import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import * as jsYaml from 'js-yaml'
import { sha256Digest } from '../shared/artifact.ts'
import { InvalidInputError } from '../shared/errors.ts'
import { describeObject, type KubeObject, type Located } from '../shared/manifests.ts'
import { isSopsSecret, sealedValues, SOPS_FOLDER, SOPS_SOURCE } from '../shared/sops.ts'

const SKIP = new Set(['.git', 'node_modules'])
const MAX_FILE = 1024 * 1024

type Source = { file: string; bytes: Buffer }

/** Every SOPS-encrypted Secret document in the config repository at `root`, by its encrypted values. */
async function indexSources(root: string): Promise<Map<string, Source>> {
  const index = new Map<string, Source>()
  const entries = await readdir(root, { recursive: true, withFileTypes: true })
  for (const entry of entries) {
    if (!entry.isFile() || !/\.ya?ml$/.test(entry.name)) continue
    const path = join(entry.parentPath, entry.name)
    if (relative(root, path).split('/').some((part) => SKIP.has(part))) continue
    const bytes = await readFile(path)
    if (bytes.length > MAX_FILE) continue
    const text = bytes.toString('utf8')
    if (!text.includes('ENC[AES256_GCM') || !/^sops:/m.test(text)) continue
    let documents: unknown[]
    try {
      documents = jsYaml.loadAll(text, undefined, { schema: jsYaml.CORE_SCHEMA })
    } catch {
      continue
    }
    for (const doc of documents) {
      if (!doc || typeof doc !== 'object') continue
      // Only documents with encrypted values: a file's other documents are nobody's source.
      const fingerprint = sealedValues(doc)
      if (fingerprint.includes('=ENC[')) index.set(fingerprint, { file: relative(root, path), bytes })
    }
  }
  return index
}

/**
 * The rendered `objects` with each SOPS Secret annotated with its file's place in the artifact, and those files.
 * A SOPS Secret whose encrypted values no file of the repository holds as they are is refused: it was changed
 * after encryption (a patch, a generator), and its MAC could never be checked.
 */
export async function attachSopsSources(
  root: string,
  objects: readonly Located[],
  known?: Map<string, Source>,
): Promise<{ objects: Located[]; files: Map<string, Buffer>; index: Map<string, Source> | undefined }> {
  const files = new Map<string, Buffer>()
  if (!objects.some((o) => isSopsSecret(o.object))) return { objects: [...objects], files, index: known }
  const index = known ?? (await indexSources(root))
  const out = objects.map((located) => {
    if (!isSopsSecret(located.object)) return located
    const source = index.get(sealedValues(located.object))
    if (!source) {
      throw new InvalidInputError(
        'SopsSourceNotFound',
        `${located.source}: ${describeObject(located.object)} is SOPS-encrypted, but no file of the repository holds `
        + 'its encrypted values as they are: it was changed after encryption (a patch or a generator?). Encrypt the '
        + 'Secret as it is applied, and include that file as it is',
      )
    }
    const path = `${SOPS_FOLDER}/${sha256Digest(source.bytes).slice('sha256:'.length)}.yaml`
    files.set(path, source.bytes)
    const annotations = located.object.metadata.annotations as Record<string, string> | undefined
    const object: KubeObject = {
      ...located.object,
      metadata: { ...located.object.metadata, annotations: { ...annotations, [SOPS_SOURCE]: path } },
    }
    return { ...located, object }
  })
  return { objects: out, files, index }
}
