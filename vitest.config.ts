import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts', 'tests/**/*.test.tsx'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // End-to-end suites start real processes on loopback; two cores run two files at a time.
    maxWorkers: 2,
    reporters: ['default', './tests/support/skipped-summary-reporter.ts'],
  },
})
