import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { expect, it } from 'vitest'
import { moveToFreeName, numberedName } from '../../peer/src/content/free-name.ts'

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

it('saves a name of 255 bytes again and again, cutting its stem at a code point and keeping its extension', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'free-name-'))
  try {
    // 3-byte and 4-byte code points, so a cut by bytes would split one.
    const stem = `${'é'.repeat(40)}${'€'.repeat(30)}${'🎵'.repeat(20)}`
    const name = `${stem}.flac`
    expect(Buffer.byteLength(name)).toBe(255) // the longest a file name may be
    const saved: string[] = []
    for (let i = 0; i < 12; i++) {
      const temp = join(dir, `.upload-${i}`)
      await writeFile(temp, `copy ${i}`)
      saved.push(basename(await moveToFreeName(temp, dir, name)))
    }
    expect(saved[0]).toBe(name)
    expect(new Set(saved).size).toBe(12)
    for (const [i, kept] of saved.entries()) {
      expect(Buffer.byteLength(kept), kept).toBeLessThanOrEqual(255)
      expect(kept).not.toContain('\uFFFD')
      expect(stem.startsWith(kept.replace(/( \(\d+\))?\.flac$/, '')), kept).toBe(true)
      if (i > 0) expect(kept.endsWith(` (${i}).flac`), kept).toBe(true)
      expect(await readFile(join(dir, kept), 'utf8')).toBe(`copy ${i}`)
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

it('cuts the whole name when its extension is too long to keep beside the number', () => {
  const name = `a.${'x'.repeat(252)}`
  const second = numberedName(name, 1)
  expect(Buffer.byteLength(second)).toBe(255)
  expect(second).toBe(`${name.slice(0, 251)} (1)`)
})
