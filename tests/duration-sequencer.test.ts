import { resolve } from 'node:path'
import { expect, it } from 'vitest'
import type { TestSpecification } from 'vitest/node'
import DurationSequencer, { expectedSeconds, readDurations } from './support/duration-sequencer.ts'

const root = resolve(import.meta.dirname, '..')

it('starts the files of the durations table longest first, placing those it lacks by their size', async () => {
  const seconds = readDurations()
  const known = Object.keys(seconds)
  expect(known.length).toBeGreaterThan(1)
  // Files the table never holds (no tests): a big one and a small one.
  const [big, small] = ['tests/support/api-suite.ts', 'tests/support/ports.ts']
  for (const file of [big, small]) expect(seconds[file as string]).toBeUndefined()
  const sequencer = new DurationSequencer({ config: { root } } as never)
  const specs = [small, ...[...known].reverse(), big].map((file) => ({
    moduleId: resolve(root, file as string),
  }))
  const sorted = await sequencer.sort(specs as unknown as TestSpecification[])
  const order = sorted.map((spec) => spec.moduleId.slice(root.length + 1))
  const expected = order.map((file) => expectedSeconds(resolve(root, file), seconds, root))
  expect(expected).toEqual([...expected].sort((a, b) => b - a))
  for (const file of known) expect(expectedSeconds(resolve(root, file), seconds, root)).toBe(seconds[file])
  expect(order.indexOf(big as string)).toBeLessThan(order.indexOf(small as string))
})
