import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { moveToFreeName } from '../../peer/src/content/free-name.ts'

it('moves files arriving at once under one name to names of their own, replacing none', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'free-name-'))
  await writeFile(join(dir, 'song.mp3'), 'already here')
  const arrivals = await Promise.all(
    Array.from({ length: 10 }, async (_, i) => {
      const temp = join(dir, `.upload-${i}`)
      await writeFile(temp, `arrival ${i}`)
      return temp
    }),
  )
  const paths = await Promise.all(arrivals.map((temp) => moveToFreeName(temp, dir, 'song.mp3')))
  expect(new Set(paths).size).toBe(10)
  expect(await readFile(join(dir, 'song.mp3'), 'utf8')).toBe('already here')
  const contents = await Promise.all(paths.map((p) => readFile(p, 'utf8')))
  expect(contents.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `arrival ${i}`).sort())
  expect((await readdir(dir)).sort()).toEqual(
    ['song.mp3', ...Array.from({ length: 10 }, (_, i) => `song (${i + 1}).mp3`)].sort(),
  )
})
