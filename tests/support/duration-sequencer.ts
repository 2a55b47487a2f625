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
 * What a file the table lacks is taken to last: a second per 200 bytes of its source, about what the
 * end-to-end suites measured (176 to 580 bytes a second; unit files run far faster per byte), so a new
 * end-to-end suite ranks with the long ones and a small file with the short ones.
 */
export const UNKNOWN_BYTES_PER_SECOND = 200

/** How long a test file is taken to run: the table's seconds, or an estimate from its size. */
export function expectedSeconds(path: string, seconds: Record<string, number>, root: string): number {
  return seconds[relative(root, path)] ?? statSync(path).size / UNKNOWN_BYTES_PER_SECOND
}

/**
 * Starts the longest test files first, from the committed table of their durations, so two workers
 * finish together instead of one waiting on a long file started last (Vitest alone orders files it has
 * no cache for by size, and a fresh clone has none: the API suites, small files and long runs, started
 * last). Files the table lacks (new suites) are placed by an estimate from their size.
 */
export default class DurationSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const seconds = readDurations()
    const root = this.ctx.config.root
    const expected = new Map(files.map((spec) => [spec, expectedSeconds(spec.moduleId, seconds, root)]))
    return [...files].sort((a, b) => (expected.get(b) ?? 0) - (expected.get(a) ?? 0))
  }
}
