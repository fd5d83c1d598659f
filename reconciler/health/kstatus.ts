/**
 * Health of applied objects, after kstatus (sigs.k8s.io/cli-utils): Current, InProgress or
 * Failed, with a message. Pure: it reads live objects and decides.
 */
export type Health = { status: 'Current' | 'InProgress' | 'Failed'; message: string }

type Obj = {
  apiVersion?: string
  kind?: string
  metadata?: { generation?: number; deletionTimestamp?: string }
  spec?: Record<string, unknown>
  status?: Record<string, unknown>
}
type Cond = { type?: string; status?: string; reason?: string; message?: string }

const num = (value: unknown): number => (typeof value === 'number' ? value : 0)
const conditions = (o: Obj): Cond[] => (Array.isArray(o.status?.conditions) ? (o.status.conditions as Cond[]) : [])
const condition = (o: Obj, type: string): Cond | undefined => conditions(o).find((c) => c.type === type)

/** In progress when the object's controller has not observed its generation yet; undefined otherwise. */
export function unobservedGeneration(object: object): Health | undefined {
  const o = object as Obj
  const observed = o.status?.observedGeneration
  if (typeof observed === 'number' && o.metadata?.generation !== undefined && observed !== o.metadata.generation) {
    return { status: 'InProgress', message: `generation ${o.metadata.generation} not observed yet` }
  }
  return undefined
}

export function health(object: object): Health {
  const o = object as Obj
  if (o.metadata?.deletionTimestamp) return { status: 'InProgress', message: 'terminating' }
  const unobserved = unobservedGeneration(object)
  if (unobserved) return unobserved
  if (condition(o, 'Stalled')?.status === 'True')
    return { status: 'Failed', message: condition(o, 'Stalled')?.message ?? 'stalled' }
  if (condition(o, 'Reconciling')?.status === 'True')
    return { status: 'InProgress', message: condition(o, 'Reconciling')?.message ?? 'reconciling' }
  switch (o.kind) {
    case 'Deployment':
      return deployment(o)
    case 'StatefulSet':
      return statefulSet(o)
    case 'DaemonSet':
      return daemonSet(o)
    case 'Job':
      return job(o)
    case 'CustomResourceDefinition':
      return condition(o, 'Established')?.status === 'True'
        ? current()
        : { status: 'InProgress', message: 'not Established yet' }
    case 'PersistentVolumeClaim':
      return o.status?.phase === 'Bound' ? current() : { status: 'InProgress', message: 'not Bound yet' }
  }
  const ready = condition(o, 'Ready')
  if (ready)
    return ready.status === 'True' ? current() : { status: 'InProgress', message: ready.message ?? 'not Ready' }
  return current()
}

const current = (): Health => ({ status: 'Current', message: '' })

function deployment(o: Obj): Health {
  const progressing = condition(o, 'Progressing')
  if (progressing?.reason === 'ProgressDeadlineExceeded')
    return { status: 'Failed', message: `ProgressDeadlineExceeded: ${progressing.message ?? 'no progress within the deadline'}` }
  if (o.status?.observedGeneration === undefined)
    return { status: 'InProgress', message: 'not observed by its controller yet' }
  const want = typeof o.spec?.replicas === 'number' ? o.spec.replicas : 1
  const s = o.status
  if (num(s.updatedReplicas) < want)
    return { status: 'InProgress', message: `${num(s.updatedReplicas)} of ${want} replicas updated` }
  if (num(s.replicas) > num(s.updatedReplicas))
    return {
      status: 'InProgress',
      message: `${num(s.replicas) - num(s.updatedReplicas)} old replicas pending termination`,
    }
  if (num(s.availableReplicas) < want)
    return { status: 'InProgress', message: `${num(s.availableReplicas)} of ${want} replicas available` }
  if (num(s.readyReplicas) < want)
    return { status: 'InProgress', message: `${num(s.readyReplicas)} of ${want} replicas ready` }
  return current()
}

function statefulSet(o: Obj): Health {
  if ((o.spec?.updateStrategy as { type?: string } | undefined)?.type === 'OnDelete') return current()
  if (o.status?.observedGeneration === undefined)
    return { status: 'InProgress', message: 'not observed by its controller yet' }
  const want = typeof o.spec?.replicas === 'number' ? o.spec.replicas : 1
  const s = o.status
  if (num(s.readyReplicas) < want)
    return { status: 'InProgress', message: `${num(s.readyReplicas)} of ${want} replicas ready` }
  if (num(s.replicas) > want) return { status: 'InProgress', message: 'extra replicas pending termination' }
  if (s.currentRevision !== s.updateRevision) return { status: 'InProgress', message: 'rolling update in progress' }
  return current()
}

function daemonSet(o: Obj): Health {
  const s = o.status
  if (s?.desiredNumberScheduled === undefined)
    return { status: 'InProgress', message: 'not observed by its controller yet' }
  const want = num(s.desiredNumberScheduled)
  for (const field of ['currentNumberScheduled', 'updatedNumberScheduled', 'numberAvailable', 'numberReady']) {
    if (num(s[field]) < want) return { status: 'InProgress', message: `${field} ${num(s[field])} of ${want}` }
  }
  return current()
}

function job(o: Obj): Health {
  if (condition(o, 'Complete')?.status === 'True') return current()
  if (condition(o, 'Failed')?.status === 'True')
    return { status: 'Failed', message: condition(o, 'Failed')?.message ?? 'job failed' }
  return o.status?.startTime ? current() : { status: 'InProgress', message: 'not started yet' }
}
