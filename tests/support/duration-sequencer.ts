import { existsSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { BaseSequencer, type TestSpecification } from 'vitest/node'

/** `tests/durations.json`: seconds each test file took when run whole, as `RECORD_DURATIONS=1` wrote them. */
export const durationsFile = join(import.meta.dirname, '../durations.json')

export function readDurations(): Record<string, number> {
  if (!existsSync(durationsFile)) return {}
  return (JSON.parse(readFileSync(durationsFile, 'utf8')) as { seconds: Record<string, number> }).seconds
}

/**
 * Starts the longest test files first, from the committed table of their durations, so two workers
 * finish together instead of one waiting on a long file started last (Vitest alone orders files it has
 * no cache for by size, and a fresh clone has none). Files the table lacks (new suites) go first,
 * largest first: an unknown file may be long, and a short one first costs little.
 */
export default class DurationSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const seconds = readDurations()
    const root = this.ctx.config.root
    const known = (spec: TestSpecification) => seconds[relative(root, spec.moduleId)]
    const size = (spec: TestSpecification) => statSync(spec.moduleId).size
    return [...files].sort((a, b) => {
      const [da, db] = [known(a), known(b)]
      if (da === undefined || db === undefined) {
        if (da !== db) return da === undefined ? -1 : 1
        return size(b) - size(a)
      }
      return db - da
    })
  }
}
