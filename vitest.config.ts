import { defineConfig } from 'vitest/config'
import DurationSequencer from './tests/support/duration-sequencer.ts'

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts', 'tests/**/*.test.tsx'],
    pool: 'forks',
    // Files take turns in a few long-lived workers instead of a process each: loading the directory's
    // app, Connect, libSQL and the helpers again for each of 120-odd files cost about 70 CPU-s of a
    // run (tests/directory alone: 221 -> 174 CPU-s), on two cores a run's whole margin. What a file
    // starts ends with it, failed or not (test-file-setup: its processes, its workerds and local D1s,
    // its temporary folder), and helpers keep nothing for the next file (the Workers bundle is kept
    // per temporary folder).
    isolate: false,
    // Three minutes: with four files at a time, and another run beside this one, a rate-capped
    // transfer's test took over a minute (relay, streaming, swarm, upload slots; normally 15-30 s).
    testTimeout: 180_000,
    hookTimeout: 120_000,
    // End-to-end suites start real processes on loopback and spend much of their time waiting on them
    // (leases, rate caps, stall timers). With three files at a time a full run kept two cores 1.5 busy
    // (647 s); with four, 1.92 busy to the last file (538 s). More would only share the same two cores.
    maxWorkers: 4,
    // Tests of one file run at once only where the file says so (describe with concurrent: the API
    // suites, each test with a directory of its own and mostly waiting on it); at most this many.
    maxConcurrency: 4,
    reporters: [
      'default',
      './tests/support/skipped-summary-reporter.ts',
      './tests/support/durations-reporter.ts',
    ],
    // Longest files first, from tests/durations.json (RECORD_DURATIONS=1 refreshes it).
    sequence: { sequencer: DurationSequencer },
    // Every temporary folder and process a test file makes goes with the file, and the run's with the run.
    globalSetup: ['./tests/support/temp-root.ts'],
    setupFiles: ['./tests/support/test-file-setup.ts'],
  },
})
