import { join, relative } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  MAX_PATH_SEGMENTS,
  nameProblem,
  pathProblem,
  placeUnder,
  savedName,
} from '../../peer/src/content/safe-path.ts'

const root = '/srv/out'
const refusal = (folder: string, name: string) => {
  const place = placeUnder(root, folder, name)
  return 'refused' in place ? place.refused : undefined
}

describe('placeUnder: a path and a name from the network, under a folder of ours or refused', () => {
  it('places a nested file with spaces and Unicode where its folders say', () => {
    expect(placeUnder(root, 'Nightjar Ensemble/Songs from Härrow Lane', '01 opening.flac')).toEqual({
      file: join(root, 'Nightjar Ensemble', 'Songs from Härrow Lane', '01 opening.flac'),
    })
    expect(placeUnder(root, '', 'top.txt')).toEqual({ file: join(root, 'top.txt') })
    expect(placeUnder(root, '…/ 🎵 ', '...')).toEqual({ file: join(root, '…', ' 🎵 ', '...') })
  })

  it.each([
    ['a parent folder', '../etc', 'passwd', /"\.\."/],
    ['a parent folder deeper in', 'Album/../../x', 'a.flac', /"\.\."/],
    ['the folder itself', 'Album/.', 'a.flac', /"\."/],
    ['an absolute path', '/etc', 'passwd', /absolute/],
    ['a NUL', 'Al\u0000bum', 'a', /NUL/],
    ['a control character', 'Album', 'a\u001b[2Jb', /control/],
    ['a backslash', 'Album\\..\\..', 'a', /\\/],
    ['an empty folder name', 'Album//Disc 1', 'a', /empty/],
    ['a slash at the end', 'Album/', 'a', /empty/],
    ['a name that is a path', 'Album', '../../a', /\//],
    ['a name of ..', 'Album', '..', /"\.\."/],
    ['an empty name', 'Album', '', /empty/],
    ['a name of 256 bytes', 'Album', 'é'.repeat(128), /255 bytes/],
    ['a folder name of 256 bytes', 'x'.repeat(256), 'a', /255 bytes/],
    ['33 folders', Array.from({ length: 33 }, () => 'd').join('/'), 'a', /32 folders/],
    ['10,000 folders', Array.from({ length: 10_000 }, () => 'd').join('/'), 'a', /1024 bytes/],
    [
      'a path of 1,025 bytes',
      [...Array.from({ length: 4 }, () => 'x'.repeat(204)), 'x'.repeat(205)].join('/'),
      'a',
      /1024 bytes/,
    ],
    ['a path of 1 MB', 'x/'.repeat(500_000), 'a', /1024 bytes/],
  ])('refuses %s', (_what, folder, name, why) => {
    expect(refusal(folder, name)).toMatch(why)
  })

  it('takes the limits themselves: 32 folders, 1,024 bytes, names of 255 bytes', () => {
    const deep = Array.from({ length: MAX_PATH_SEGMENTS }, () => 'd').join('/')
    expect(refusal(deep, 'a')).toBeUndefined()
    const long = ['x'.repeat(255), 'x'.repeat(255), 'x'.repeat(255), 'x'.repeat(254), 'x'].join('/')
    expect(Buffer.byteLength(long)).toBe(1024)
    expect(refusal(long, 'y'.repeat(255))).toBeUndefined()
    expect(nameProblem('€'.repeat(85))).toBeUndefined() // 255 bytes
    expect(pathProblem('')).toBeUndefined()
  })

  it('never answers a file outside the folder, whatever the path and name', () => {
    const piece = fc.constantFrom('..', '.', '', '/', '\\', 'a', 'é', '\u0000', ' ', '~', 'C:')
    const text = fc.array(piece, { maxLength: 12 }).map((parts) => parts.join(''))
    fc.assert(
      fc.property(text, text, (folder, name) => {
        const place = placeUnder(root, folder, name)
        if ('refused' in place) return
        const rel = relative(root, place.file)
        expect(rel === '..' || rel.startsWith('../')).toBe(false)
        expect(rel).not.toBe('')
        expect(place.file.startsWith(`${root}/`)).toBe(true)
        expect(rel.split('/').at(-1)).toBe(name)
      }),
      { numRuns: 5000 },
    )
  })
})

describe('savedName: the name a single download is saved under', () => {
  const sha = 'ab'.repeat(32)
  it('keeps a file name and falls back to the sha256 for anything that could leave the folder', () => {
    expect(savedName('01 opening.flac', sha)).toBe('01 opening.flac')
    for (const hostile of [
      '../../.config/autostart/x.desktop',
      '/etc/passwd',
      '..',
      '.',
      'a\\b',
      'a\u0000b',
      '',
    ])
      expect(savedName(hostile, sha)).toBe(sha)
    expect(savedName('x'.repeat(256), sha)).toBe(sha)
  })
})
