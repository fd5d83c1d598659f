/**
 * docs/pictures/cost-curves.svg from the figures the benchmarks recorded (docs/figures/scale.json from
 * `npm run bench -- scale --record …`, docs/figures/large.json from `npm run bench -- large --record …`):
 * how the reconciler's cost grows with Environments and with objects per version, each against its goal.
 * `npm run docs:pictures` runs it.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

type ScalePoint = {
  environments: number
  readySeconds: number
  rssMiB: number
  cpuMsPerEnvInterval: number
  driftP50Ms: number
  rollout: { cpu: { berth: number; apiserver: number; etcd: number } }
}
type LargePoint = { objects: number; applyMs: number; kubectlMs: number; pruneMs: number; inSyncMs: number }
type Series = { name: string; colour: string; values: Array<[number, number]> }
type Panel = { title: string; x: string; y: string; series: Series[]; goal?: { value: number; label: string } }

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url))
const scale = JSON.parse(await readFile(here('../figures/scale.json'), 'utf8')) as { date: string; points: ScalePoint[] }
const large = JSON.parse(await readFile(here('../figures/large.json'), 'utf8')) as { date: string; points: LargePoint[] }
const BERTH = '#1f6feb'
const OTHER = '#d1242f'
const GREY = '#8c959f'
const envs = (f: (p: ScalePoint) => number): Array<[number, number]> => scale.points.map((p) => [p.environments, f(p)])
const objs = (f: (p: LargePoint) => number): Array<[number, number]> => large.points.map((p) => [p.objects, f(p)])

const panels: Panel[] = [
  {
    title: 'Time until every Environment is Ready',
    x: 'Environments × 10 objects',
    y: 's',
    series: [{ name: 'berth, one reconciler', colour: BERTH, values: envs((p) => p.readySeconds) }],
    goal: { value: 300, label: 'goal 300 s' },
  },
  {
    title: 'Reconciler peak memory',
    x: 'Environments × 10 objects',
    y: 'MiB',
    series: [{ name: 'rss (VmHWM)', colour: BERTH, values: envs((p) => p.rssMiB) }],
    goal: { value: 300, label: 'goal 300 MiB' },
  },
  {
    title: 'Who works while they roll out (cores of 2)',
    x: 'Environments × 10 objects',
    y: 'cores',
    series: [
      { name: 'kube-apiserver', colour: OTHER, values: envs((p) => p.rollout.cpu.apiserver) },
      { name: 'berth', colour: BERTH, values: envs((p) => p.rollout.cpu.berth) },
      { name: 'etcd', colour: GREY, values: envs((p) => p.rollout.cpu.etcd) },
    ],
  },
  {
    title: 'One Environment of many objects: first apply',
    x: 'objects in the version',
    y: 's',
    series: [
      { name: 'kubectl apply --server-side', colour: OTHER, values: objs((p) => p.kubectlMs / 1000) },
      { name: 'berth (dry run of all, then apply)', colour: BERTH, values: objs((p) => p.applyMs / 1000) },
      { name: 'berth prune of half', colour: GREY, values: objs((p) => p.pruneMs / 1000) },
    ],
  },
]

const W = 420
const H = 260
const M = { left: 56, right: 28, top: 34, bottom: 74 }
const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** A round upper bound for an axis: 1, 2 or 5 times a power of ten. */
function niceMax(value: number): number {
  const power = 10 ** Math.floor(Math.log10(value || 1))
  return ([1, 2, 5, 10].map((m) => m * power).find((m) => m >= value) ?? 10 * power)
}

function panel(p: Panel, x0: number, y0: number): string {
  const xs = p.series.flatMap((s) => s.values.map(([x]) => x))
  const ys = p.series.flatMap((s) => s.values.map(([, y]) => y))
  const xMax = niceMax(Math.max(...xs))
  const yMax = niceMax(Math.max(...ys, p.goal?.value ?? 0) * 1.05)
  const pw = W - M.left - M.right
  const ph = H - M.top - M.bottom
  const px = (x: number): number => x0 + M.left + (x / xMax) * pw
  const py = (y: number): number => y0 + M.top + ph - (y / yMax) * ph
  const out: string[] = [`<text x="${x0 + M.left}" y="${y0 + 20}" class="title">${escape(p.title)}</text>`]
  for (let i = 0; i <= 4; i++) {
    const y = (yMax * i) / 4
    out.push(`<line x1="${px(0)}" x2="${px(xMax)}" y1="${py(y)}" y2="${py(y)}" class="grid"/>`)
    out.push(`<text x="${px(0) - 6}" y="${py(y) + 4}" class="tick" text-anchor="end">${+y.toPrecision(3)}</text>`)
  }
  for (const x of [...new Set(xs)]) {
    out.push(`<text x="${px(x)}" y="${py(0) + 16}" class="tick" text-anchor="middle">${x}</text>`)
  }
  out.push(`<text x="${px(xMax / 2)}" y="${py(0) + 32}" class="axis" text-anchor="middle">${escape(p.x)}</text>`)
  out.push(`<text x="${x0 + 12}" y="${py(yMax / 2)}" class="axis" transform="rotate(-90 ${x0 + 12} ${py(yMax / 2)})"`
    + ` text-anchor="middle">${escape(p.y)}</text>`)
  if (p.goal) {
    const g = py(p.goal.value)
    out.push(`<line x1="${px(0)}" x2="${px(xMax)}" y1="${g}" y2="${g}" class="goal"/>`)
    out.push(`<text x="${px(xMax)}" y="${g - 4}" class="tick" text-anchor="end">${escape(p.goal.label)}</text>`)
  }
  p.series.forEach((s, i) => {
    const points = s.values.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')
    out.push(`<polyline points="${points}" fill="none" stroke="${s.colour}" stroke-width="2"/>`)
    for (const [x, y] of s.values) {
      out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${s.colour}"/>`)
    }
    const ly = py(0) + 46 + i * 12
    const lx = px(0)
    out.push(`<rect x="${lx}" y="${ly - 8}" width="10" height="10" fill="${s.colour}"/>`)
    out.push(`<text x="${lx + 14}" y="${ly + 1}" class="legend">${escape(s.name)}</text>`)
  })
  return out.join('\n')
}

const width = W * 2
const height = H * 2 + 24
const body = panels.map((p, i) => panel(p, (i % 2) * W, Math.floor(i / 2) * H)).join('\n')
const note = `Measured on a 2-core machine with one reconciler process: scale ${scale.date}, large ${large.date}`
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}"
  font-family="system-ui, sans-serif">
<style>
.title { font-size: 13px; font-weight: 600; fill: #24292f }
.tick { font-size: 10px; fill: #57606a }
.axis { font-size: 11px; fill: #57606a }
.legend { font-size: 10px; fill: #24292f }
.grid { stroke: #d0d7de; stroke-width: 1 }
.goal { stroke: #2da44e; stroke-width: 1.5; stroke-dasharray: 5 4 }
</style>
<rect width="100%" height="100%" fill="#ffffff"/>
${body}
<text x="${width / 2}" y="${height - 8}" class="tick" text-anchor="middle">${escape(note)}</text>
</svg>
`
// `node docs/pictures/cost-curves.ts <file>` writes elsewhere (docs.test.ts checks the committed picture is current).
await writeFile(process.argv[2] ?? here('cost-curves.svg'), svg)
