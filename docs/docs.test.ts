/**
 * The docs say what the code does: every reason the code can write is explained in
 * troubleshooting.md, every status field in reference/status.md, every relative link in the
 * README and docs/ leads to a file, the cost-curves picture is current with the recorded figures, and the README
 * stays a front door (under 400 lines).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import { STATUS_FIELDS } from '../api/environment.ts'

const ROOT = join(import.meta.dirname, '..')
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8')

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(join(ROOT, path)).isDirectory()) return sources(path)
    return path.endsWith('.ts') && !path.endsWith('.test.ts') ? [path] : []
  })
}

/** Reasons as the code writes them: typed errors, Events, conditions, verdicts, archive refusals. */
const REASON_PATTERNS = [
  /new\s+\w*Error\(\s*'([A-Z][A-Za-z]+)'/g,
  /'(?:Normal|Warning)',\s*'([A-Z][A-Za-z]+)'/g,
  /reason:\s*'([A-Z][A-Za-z]+)'/g,
  /ended\(\s*'(?:True|False)',\s*'([A-Z][A-Za-z]+)'/g,
  /fail\(\s*'([A-Z][A-Za-z]+)'/g,
  /return \[\s*'([A-Z][A-Za-z]+)',/g,
]
/** Words the patterns catch that are no reason (a condition status, a signal name). */
const NOT_REASONS = new Set(['True', 'False', 'SIGTERM', 'SIGINT'])

describe('the docs match the code', () => {
  it('troubleshooting.md explains every reason berth writes', () => {
    const reasons = new Set<string>()
    for (const file of ['api', 'reconciler', 'shared', 'install'].flatMap(sources)) {
      const text = read(file)
      for (const pattern of REASON_PATTERNS) for (const [, reason] of text.matchAll(pattern)) reasons.add(reason ?? '')
    }
    for (const reason of Object.values(
      read('shared/oras.ts').match(/const REASONS[^}]*}/)?.[0].match(/'([A-Z][A-Za-z]+)'/g) ?? [],
    )) reasons.add(reason.replaceAll('\'', ''))
    const doc = read('docs/troubleshooting.md')
    const missing = [...reasons].filter((r) => !NOT_REASONS.has(r) && !doc.includes(`\`${r}\``))
    expect(reasons.size).toBeGreaterThan(40)
    expect(missing).toEqual([])
  })

  it('reference/status.md describes every status field', () => {
    const doc = read('docs/reference/status.md')
    expect(STATUS_FIELDS.filter((field) => !doc.includes(`| \`${field}\` |`))).toEqual([])
  })

  it('every relative link in the README and docs/ leads to a file', () => {
    const pages = ['README.md', ...readdirSync(join(ROOT, 'docs'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.md'))
      .map((f) => join('docs', f))]
    const broken: string[] = []
    for (const page of pages) {
      for (const [, target] of read(page).matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (!target || /^[a-z]+:/.test(target)) continue
        const path = join(ROOT, dirname(page), target)
        if (!existsSync(path)) broken.push(`${page} → ${relative(ROOT, path)}`)
      }
    }
    expect(broken).toEqual([])
  })

  it('the cost-curves picture is the one its source makes from the recorded figures', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-pictures-'))
    try {
      const made = join(dir, 'cost-curves.svg')
      await execa(process.execPath, [join(ROOT, 'docs/pictures/cost-curves.ts'), made])
      expect(readFileSync(made, 'utf8'), 'run npm run docs:pictures').toBe(read('docs/pictures/cost-curves.svg'))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('the README is the front door: under 400 lines', () => {
    expect(read('README.md').split('\n').length).toBeLessThan(400)
  })
})
