/** berth's own name, version and description, from package.json (the one place they are written). */
import { readFileSync } from 'node:fs'

export const BERTH = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string
  description: string
}
