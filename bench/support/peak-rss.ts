// Loaded with `node --import` into a measured berth process: on exit, write its peak RSS
// (KiB, from getrusage) to the file named by BERTH_BENCH_RSS_FILE.
import { appendFileSync } from 'node:fs'

const file = process.env.BERTH_BENCH_RSS_FILE
if (file) process.on('exit', () => appendFileSync(file, `${process.resourceUsage().maxRSS}\n`))
