/**
 * GitOps mode of `berth promote`: for teams whose Environment objects live in Git, edit the
 * pin inside the file — comments and formatting kept (the yaml package's Document API) —
 * and commit `promote <env> <old> → <new>`. The cluster is not touched; the team's GitOps
 * flow applies the commit.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { basename, dirname } from 'node:path'
import { execa } from 'execa'
import { isMap, isScalar, parseAllDocuments, type Scalar, type YAMLMap } from 'yaml'
import { UsageError } from '../shared/errors.ts'

export async function promoteInFile(
  file: string,
  name: string,
  pin: { version: string; digest: string | null },
): Promise<{ before: string; commit: string }> {
  const text = await readFile(file, 'utf8').catch((error: unknown) => {
    throw new UsageError('NoFile', `cannot read ${file}`, { cause: error })
  })
  const docs = parseAllDocuments(text)
  const doc = docs.find((d) => d.get('kind') === 'Environment' && d.getIn(['metadata', 'name']) === name)
  if (!doc) throw new UsageError('NotFound', `${file} has no Environment named ${name}`)
  if (!isMap(doc.get('spec'))) throw new UsageError('InvalidFile', `${file}: Environment ${name} has no spec mapping`)
  const top = await execa('git', ['-C', dirname(file), 'rev-parse', '--show-toplevel'], { reject: false })
  if (top.exitCode !== 0)
    throw new UsageError('NotGit', `${file} is not inside a Git checkout; --file commits the change`)
  const current = doc.getIn(['spec', 'version'])
  const before = typeof current === 'string' || typeof current === 'number' ? String(current) : ''
  await writeFile(file, editPin(text, doc.get('spec') as YAMLMap, pin))
  const message = `promote ${name} ${before || '(none)'} → ${pin.version}`
  await execa('git', ['-C', dirname(file), 'add', '--', basename(file)])
  await execa('git', ['-C', dirname(file), 'commit', '--quiet', '-m', message, '--', basename(file)])
  const commit = (await execa('git', ['-C', dirname(file), 'rev-parse', 'HEAD'])).stdout.trim()
  return { before, commit }
}

/**
 * Surgical edits on the original text, located by the parsed nodes' source ranges:
 * re-serialising the document would normalise spacing and quoting the team chose.
 */
function editPin(text: string, spec: YAMLMap, pin: { version: string; digest: string | null }): string {
  const edits: Array<{ start: number; end: number; insert: string }> = []
  const scalar = (key: string): Scalar | undefined => {
    const node = spec.get(key, true)
    return isScalar(node) ? node : undefined
  }
  const version = scalar('version')
  const digest = scalar('digest')
  if (!version?.range)
    throw new UsageError('InvalidFile', 'spec.version is missing or not a plain value; set it once by hand')
  edits.push({ start: version.range[0], end: version.range[1], insert: pin.version })
  if (pin.digest && digest?.range) edits.push({ start: digest.range[0], end: digest.range[1], insert: pin.digest })
  else if (pin.digest)
    edits.push({
      start: lineEnd(text, version.range[1]),
      end: lineEnd(text, version.range[1]),
      insert: `\n${indentOf(text, version.range[0])}digest: ${pin.digest}`,
    })
  else if (digest?.range) {
    // Drop the whole `digest: …` line: a digest of the old version would refuse the new one.
    const start = text.lastIndexOf('\n', digest.range[0]) + 1
    edits.push({ start, end: Math.min(lineEnd(text, digest.range[1]) + 1, text.length), insert: '' })
  }
  let out = text
  for (const e of edits.sort((a, b) => b.start - a.start)) out = out.slice(0, e.start) + e.insert + out.slice(e.end)
  return out
}

function lineEnd(text: string, at: number): number {
  const end = text.indexOf('\n', at)
  return end < 0 ? text.length : end
}

function indentOf(text: string, at: number): string {
  const start = text.lastIndexOf('\n', at) + 1
  return /^\s*/.exec(text.slice(start))?.[0] ?? ''
}
