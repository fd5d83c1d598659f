import { defineConfig } from 'vitest/config'

// Tiers: `unit` is pure logic beside the code it tests; `ground` runs against the real registry,
// oras and kube-apiserver that test/ground/global-setup.ts starts once per run; `slow` is the
// ground suites that start grounds or processes of their own and take minutes (the demo, the
// deployed reconciler, faults, the ground's own lifecycle). `npm run test:fast` leaves `slow` out;
// `npm test` runs everything.
const SLOW = ['test/demo.test.ts', 'test/deploy.test.ts', 'test/faults.test.ts', 'test/ground-lifecycle.test.ts']
const GROUND = {
  globalSetup: ['test/ground/global-setup.ts'],
  testTimeout: 60_000,
  hookTimeout: 120_000,
}
export default defineConfig({
  test: {
    reporters: ['default', './test/support/summary-reporter.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['{api,cli,docs,install,shared,packager,reconciler}/**/*.test.ts'],
        },
      },
      { test: { name: 'ground', include: ['test/**/*.test.ts'], exclude: SLOW, ...GROUND } },
      { test: { name: 'slow', include: SLOW, ...GROUND } },
    ],
  },
})
