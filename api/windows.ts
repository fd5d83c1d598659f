/**
 * Promotion windows (`spec.promotion.windows`), shaped like Argo CD's sync windows: a cron schedule says when a window
 * opens, `duration` how long it stays open, in `timeZone` (IANA; UTC by default). A new version lands when it arrives
 * inside an allow window (if there are any) and outside every deny window; otherwise it is held until that is so.
 * Cron is croner's (a tested parser with time zones and daylight saving), not one of our own.
 */
import { Cron } from 'croner'
import { durationMs } from '../shared/duration.ts'

export type Window = { kind: 'allow' | 'deny'; schedule: string; duration: string; timeZone?: string | undefined }

/** Why `schedule` (in `timeZone`) is no cron schedule, or undefined when it is one. */
export function cronProblem(schedule: string, timeZone?: string): string | undefined {
  try {
    // croner takes an unknown zone without a word; Intl refuses it.
    if (timeZone) new Intl.DateTimeFormat('en', { timeZone })
    cron({ schedule, timeZone }).stop()
    return undefined
  } catch (error: unknown) {
    const why = error instanceof Error ? error.message : String(error)
    return `not a cron schedule${timeZone ? ` in ${timeZone}` : ''}: ${why}`
  }
}

const cron = (w: Pick<Window, 'schedule' | 'timeZone'>): Cron =>
  new Cron(w.schedule, { ...(w.timeZone ? { timezone: w.timeZone } : {}), paused: true })

/** When `w` opened last, if it is open at `at`; undefined when it is closed then. */
function openedAt(w: Window, at: Date): Date | undefined {
  // A window that opens exactly now is open: look back from a second later (croner's resolution).
  const [last] = cron(w).previousRuns(1, new Date(at.getTime() + 1000))
  if (!last) return undefined
  return at.getTime() < last.getTime() + durationMs(w.duration) ? last : undefined
}

export type WindowVerdict = { open: true } | { open: false; why: string; opensAt: Date | undefined }

const describe = (w: Window): string => `"${w.schedule}" for ${w.duration}${w.timeZone ? ` (${w.timeZone})` : ''}`

/** Whether a new version may land at `now`, and if not why and when it next may (undefined: never, in a year). */
export function windowVerdict(windows: readonly Window[], now: Date): WindowVerdict {
  const why = closedBy(windows, now)
  if (!why) return { open: true }
  return { open: false, why, opensAt: nextOpening(windows, now) }
}

/** Why `at` is outside the windows (a deny window open, or no allow window open), or undefined when it is inside. */
function closedBy(windows: readonly Window[], at: Date): string | undefined {
  const deny = windows.find((w) => w.kind === 'deny' && openedAt(w, at))
  if (deny) return `inside the deny window ${describe(deny)}`
  const allows = windows.filter((w) => w.kind === 'allow')
  if (allows.length > 0 && !allows.some((w) => openedAt(w, at))) {
    return `outside every allow window (${allows.map(describe).join('; ')})`
  }
  return undefined
}

/** The first moment after `now` at which a new version may land, stepping from one window edge to the next. */
function nextOpening(windows: readonly Window[], now: Date): Date | undefined {
  let at = now
  const horizon = now.getTime() + 366 * 24 * 3600_000
  for (let step = 0; step < 100 && at.getTime() < horizon; step++) {
    if (!closedBy(windows, at)) return at
    const edges: number[] = []
    for (const w of windows) {
      const opened = openedAt(w, at)
      if (opened && w.kind === 'deny') edges.push(opened.getTime() + durationMs(w.duration))
      const next = cron(w).nextRun(at)
      if (next && w.kind === 'allow') edges.push(next.getTime())
    }
    const later = edges.filter((t) => t > at.getTime())
    if (later.length === 0) return undefined
    at = new Date(Math.min(...later))
  }
  return undefined
}
