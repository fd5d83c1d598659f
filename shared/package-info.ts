/** berth's own name, version and description, from package.json (the one place they are written). */
import { existsSync, readFileSync } from 'node:fs'

// From shared/ in a checkout, from dist/shared/ in an installed package.
const file = [new URL('../package.json', import.meta.url), new URL('../../package.json', import.meta.url)].find(
  (url) => existsSync(url),
)
export const BERTH = JSON.parse(readFileSync(file ?? new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string
  description: string
}
