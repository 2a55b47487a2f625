import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { HashCache } from '../../peer/src/content/hash-cache.ts'
import { ShareIndex, toEntry } from '../../peer/src/content/share-index.ts'

let dir: string
let share: string
const cachePath = () => join(dir, 'state', 'hash-cache.json')
const indexOf = () => new ShareIndex(share, new HashCache(cachePath()))
const put = (path: string, text: string) => {
  mkdirSync(join(share, path, '..'), { recursive: true })
  writeFileSync(join(share, path), text)
}
const published = (index: ShareIndex) =>
  index.files
    .map(toEntry)
    .map((e) => [e.path, e.name].filter(Boolean).join('/'))
    .sort()

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'share-index-'))
  share = join(dir, 'share')
  put('Nightjar Ensemble/Songs from Härrow Lane/01 opening.flac', 'opening')
  put('Nightjar Ensemble/Songs from Härrow Lane/02 the 🐦 sings.flac', 'sings')
  put('Nightjar Ensemble/cover.jpg', 'cover')
  put('top.txt', 'top')
  put('.hidden/secret.txt', 'secret')
  put('Nightjar Ensemble/.04 late.flac.0123456789ab.part', 'partial')
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

describe('the share index publishes each file with its folder', () => {
  it('walks three levels, keeps spaces and Unicode, leaves hidden folders and partial downloads out', async () => {
    const index = indexOf()
    const scan = await index.scan()
    expect(scan.hashed).toBe(4)
    expect(published(index)).toEqual([
      'Nightjar Ensemble/Songs from Härrow Lane/01 opening.flac',
      'Nightjar Ensemble/Songs from Härrow Lane/02 the 🐦 sings.flac',
      'Nightjar Ensemble/cover.jpg',
      'top.txt',
    ])
  })

  it('leaves out files in folders the directory would refuse: a backslash or control character, 33 deep', async () => {
    put('back\\slash/a.txt', 'a')
    put('bell\u0007/b.txt', 'b')
    put(`${Array.from({ length: 32 }, (_, i) => `d${i}`).join('/')}/deepest allowed.txt`, 'c')
    put(`${Array.from({ length: 33 }, (_, i) => `d${i}`).join('/')}/too deep.txt`, 'd')
    const index = indexOf()
    await index.scan()
    const names = index.files.map((f) => f.name)
    expect(names).toContain('deepest allowed.txt')
    expect(names).not.toContain('too deep.txt')
    expect(names).not.toContain('a.txt')
    expect(names).not.toContain('b.txt')
  })

  it('sees a moved folder as moved files, hashed again not once, even by a daemon started afresh', async () => {
    const first = indexOf()
    await first.scan()
    renameSync(join(share, 'Nightjar Ensemble'), join(share, 'Nightjar Ensemble (2019)'))
    const scan = await first.scan()
    expect(scan).toMatchObject({ added: [], removed: [], hashed: 0 })
    expect(scan.moved.map((f) => f.folder).sort()).toEqual([
      'Nightjar Ensemble (2019)',
      'Nightjar Ensemble (2019)/Songs from Härrow Lane',
      'Nightjar Ensemble (2019)/Songs from Härrow Lane',
    ])
    // A restart over a folder moved while the daemon was away reads nothing again either.
    renameSync(join(share, 'top.txt'), join(share, 'Nightjar Ensemble (2019)', 'top renamed.txt'))
    const restarted = indexOf()
    expect((await restarted.scan()).hashed).toBe(0)
    expect(published(restarted)).toContain('Nightjar Ensemble (2019)/top renamed.txt')
  })

  it('publishes one content found at two places where it was published first', async () => {
    const index = indexOf()
    await index.scan()
    put('A copy/cover.jpg', 'cover')
    const scan = await index.scan()
    expect(scan).toMatchObject({ added: [], removed: [], moved: [], hashed: 1 })
    expect(published(index)).toContain('Nightjar Ensemble/cover.jpg')
    rmSync(join(share, 'Nightjar Ensemble', 'cover.jpg'))
    const after = await index.scan()
    expect(after.moved.map((f) => f.folder)).toEqual(['A copy'])
  })
})
