/**
 * Vitest global setup for the `ground` project: one ground per test run, started before the
 * first test file and stopped after the last — also when tests fail. If the runner itself is
 * killed, the ground's guardian reaps every server (see processes.ts).
 */
import type { TestProject } from 'vitest/node'
import { type GroundInfo, startGround, stopGround } from './ground.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    ground: GroundInfo
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now()
  const ground = await startGround({ say: (line) => process.stderr.write(`testground: ${line}\n`) })
  if (!process.env.CI)
    process.stderr.write(`testground: up in ${((Date.now() - started) / 1000).toFixed(1)} s (${ground.dir})\n`)
  project.provide('ground', ground)
  return async () => {
    await stopGround(ground)
  }
}
