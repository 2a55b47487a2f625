import { writeFileSync } from 'node:fs'
import { relative } from 'node:path'
import type { Reporter, TestModule } from 'vitest/node'
import { durationsFile, readDurations } from './duration-sequencer.ts'

/**
 * With RECORD_DURATIONS=1: writes into `tests/durations.json` how long each test file of the run took
 * (setup, import and tests), for the files run whole and passed (a file filtered with -t, skipping or
 * failing, says nothing of its usual time); the others keep what the table had.
 */
export default class DurationsReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>) {
    if (process.env.RECORD_DURATIONS !== '1') return
    const seconds = readDurations()
    for (const module of testModules) {
      const states = [...module.children.allTests()].map((test) => test.result().state)
      if (states.length === 0 || states.some((state) => state !== 'passed')) continue
      const d = module.diagnostic()
      const total =
        d.environmentSetupDuration + d.prepareDuration + d.setupDuration + d.collectDuration + d.duration
      seconds[relative(process.cwd(), module.moduleId)] = Math.round(total / 100) / 10
    }
    const sorted = Object.fromEntries(Object.entries(seconds).sort(([, a], [, b]) => b - a))
    writeFileSync(durationsFile, `${JSON.stringify({ seconds: sorted }, null, 2)}\n`)
  }
}
