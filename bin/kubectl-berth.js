#!/usr/bin/env node
// kubectl finds plugins by name on PATH: `kubectl berth …` runs this file with the same arguments.
await import('./berth.js')
