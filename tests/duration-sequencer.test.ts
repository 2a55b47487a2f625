import { resolve } from 'node:path'
import { expect, it } from 'vitest'
import type { TestSpecification } from 'vitest/node'
import DurationSequencer, { readDurations } from './support/duration-sequencer.ts'

const root = resolve(import.meta.dirname, '..')

it('starts the files of the durations table longest first, after the files it lacks (largest first)', async () => {
  const seconds = readDurations()
  const known = Object.keys(seconds)
  expect(known.length).toBeGreaterThan(1)
  // Files the table never holds (no tests), the smaller one first here.
  const unknown = ['tests/support/free-port.ts', 'tests/support/api-suite.ts']
  for (const file of unknown) expect(seconds[file]).toBeUndefined()
  const sequencer = new DurationSequencer({ config: { root } } as never)
  const specs = [...known]
    .reverse()
    .concat(unknown)
    .map((file) => ({ moduleId: resolve(root, file) }))
  const sorted = await sequencer.sort(specs as unknown as TestSpecification[])
  const order = sorted.map((spec) => spec.moduleId.slice(root.length + 1))
  expect(order.slice(0, 2)).toEqual(['tests/support/api-suite.ts', 'tests/support/free-port.ts'])
  const durations = order.slice(2).map((file) => seconds[file])
  expect(durations).toEqual(Object.values(seconds).sort((a, b) => b - a))
})
