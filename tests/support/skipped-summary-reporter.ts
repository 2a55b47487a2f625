import type { Reporter, TestModule } from 'vitest/node'

/** Ends the run with one line naming every skipped test, so a skip is seen, not buried in the log. */
export default class SkippedSummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>) {
    const skipped: string[] = []
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        if (test.result().state === 'skipped')
          skipped.push(`${module.moduleId.split('/tests/')[1]}: ${test.fullName}`)
      }
    }
    const line =
      skipped.length === 0
        ? 'skipped tests: none'
        : `skipped tests (${skipped.length}): ${skipped.join('; ')}`
    process.stdout.write(`\n${line}\n`)
  }
}
