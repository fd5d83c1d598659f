/** A fresh ground for one point of a curve: each point starts from an empty cluster and registry. */
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { installEnvironmentCrd } from '../../install/crd.ts'
import { Kube, loadKubeConfig } from '../../shared/kube.ts'
import { type GroundInfo, startGround, stopGround } from '../../test/ground/ground.ts'

export type FreshGround = {
  ground: GroundInfo
  /** An admin client, the Environment CRD installed. */
  kube: Kube
  /** A scratch folder of this point's own. */
  work: string
  /** A process to kill when the point ends, however it ends. */
  started: (child: ChildProcess) => void
}

/** Run `measure` on a ground started for it (its scratch folder named `prefix…`); everything is stopped after. */
export async function onFreshGround<T>(
  prefix: string,
  say: (line: string) => void,
  measure: (fresh: FreshGround) => Promise<T>,
): Promise<T> {
  const ground = await startGround({ say })
  process.env.BERTH_ORAS = ground.parts.oras
  const work = await mkdtemp(join(tmpdir(), prefix))
  const children: ChildProcess[] = []
  try {
    const kube = new Kube(loadKubeConfig({ kubeconfig: ground.kubeconfig }))
    await installEnvironmentCrd(kube)
    return await measure({ ground, kube, work, started: (child) => children.push(child) })
  } finally {
    // Killed outright: a reconciler asked to finish its pass can wait on an apiserver that is going away.
    for (const child of children) child.kill('SIGKILL')
    await rm(work, { recursive: true, force: true })
    await stopGround(ground)
  }
}
