/**
 * Preview versions: CI publishes push K to pull request N as the prerelease `0.0.0-pr.N.K` (both counted from 1).
 * Semver orders them (a prerelease's numeric identifiers compare as numbers: pr.7.10 after pr.7.9), they sort below
 * every release, and a range such as `~1.2` never selects one. The packager writes them, `berth unpublish` deletes
 * them, an EnvironmentSet runs the newest of each pull request.
 */
// Only semver's validator, as shared/artifact.ts takes only its parser: the whole package is start-up for every push.
import validSemver from 'semver/functions/valid.js'
import { UsageError } from './errors.ts'

export const PREVIEW_TAG = /^0\.0\.0-pr\.([1-9][0-9]*)\.([1-9][0-9]*)$/

/** The version of push `push` to pull request `number`. */
export const previewVersion = (number: number, push: number): string => `0.0.0-pr.${number}.${push}`

/** The pull request and push a tag is the preview of, or undefined for any other tag (releases among them). */
export function previewOf(tag: string): { number: number; push: number } | undefined {
  const match = PREVIEW_TAG.exec(tag)
  if (!match || !validSemver(tag)) return undefined
  return { number: Number(match[1]), push: Number(match[2]) }
}

/** `number` when it can be a pull request's (1, 2, …); a usage error otherwise. */
export function pullRequest(number: number): number {
  if (!Number.isInteger(number) || number < 1) {
    throw new UsageError('InvalidPreview', `--preview ${number}: give the pull request's number (1, 2, …)`)
  }
  return number
}
