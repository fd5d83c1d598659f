import { defineConfig } from 'vitest/config'

// Tiers: `unit` is pure logic beside the code it tests; `ground` runs against the real registry,
// oras and kube-apiserver that test/ground/global-setup.ts starts once per run; `slow` is the
// ground suites that start grounds or processes of their own and take minutes (the
// deployed reconciler, faults, the ground's own lifecycle); `node` builds berth's image and runs it on a real node, and
// runs the demo (its pods on that node). `npm run test:fast` leaves `slow` and `node` out; `npm test` runs everything.
const SLOW = [
  'test/approvals.test.ts',
  'test/attestations.test.ts',
  'test/deploy.test.ts',
  'test/faults.test.ts',
  'test/ground-lifecycle.test.ts',
]
// Suites with a real node (test/ground/node.ts), each on a ground of its own: one at a time, since a node's kube-proxy
// and kubelet own machine-wide iptables chains.
const NODE = ['test/node.test.ts', 'test/demo.test.ts']
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
      { test: { name: 'ground', include: ['test/**/*.test.ts'], exclude: [...SLOW, ...NODE], ...GROUND } },
      { test: { name: 'slow', include: SLOW, ...GROUND } },
      {
        test: { name: 'node', include: NODE, fileParallelism: false, testTimeout: 600_000, hookTimeout: 1_200_000 },
      },
    ],
  },
})
