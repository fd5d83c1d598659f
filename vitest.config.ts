import { defineConfig } from 'vitest/config'

// Two tiers: `unit` is pure logic beside the code it tests; `ground` runs against the real
// registry, oras and kube-apiserver that test/ground/global-setup.ts starts once per run.
export default defineConfig({
  test: {
    reporters: ['default', './test/support/summary-reporter.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['{api,cli,install,shared,packager,reconciler}/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'ground',
          include: ['test/**/*.test.ts'],
          globalSetup: ['test/ground/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
})
