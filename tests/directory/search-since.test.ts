// Search since a cursor: the in-memory ranking of recent publishing (RecentPublications +
// rankPublished) answers what the SQL one does, and cursors hold across processes and restarts.
import { afterEach, describe, expect, it } from 'vitest'
import { createApp } from '../../directory-worker/src/app.ts'
import { decodeCursor } from '../../directory-worker/src/services/search-cursor.ts'
import { parseSettings } from '../../directory-worker/src/settings.ts'
import { publishedBetween } from '../../directory-worker/src/store/recent-publications.ts'
import { rankPublished, searchByNameSince } from '../../directory-worker/src/store/search-since.ts'
import {
  createTestDirectory,
  fileEntry,
  login,
  publish,
  type TestDirectory,
} from '../support/directory-app.ts'

const opened: TestDirectory[] = []
afterEach(() => {
  for (const directory of opened.splice(0)) directory.close()
})
const open = () => {
  const directory = createTestDirectory({ LEASE_SECONDS: '600' })
  opened.push(directory)
  return directory
}

type Answer = { results: { name: string; path: string }[]; cursor: string }
const searchIn = async (app: { request: (path: string) => Response | Promise<Response> }, query: string) => {
  const response = await app.request(`/v1/search?${query}`)
  expect(response.status).toBe(200)
  return (await response.json()) as Answer
}
const names = (answer: Answer) => answer.results.map((r) => `${r.path}/${r.name}`).sort()

describe('search since a cursor', () => {
  it('ranks recent publishing in memory exactly as the SQL ranking does', async () => {
    const directory = open()
    // The first request migrates the database.
    const before = decodeCursor((await searchIn(directory, 'q=river')).cursor) ?? -1
    const shared = fileEntry('river song.mp3', 'shared')
    const tokens = await Promise.all(
      ['ann', 'ben', 'cat', 'dan'].map((name, i) =>
        login(directory, name, { url: `http://127.0.0.1:${50051 + i}` }),
      ),
    )
    const [ann = '', ben = '', cat = '', dan = ''] = tokens
    await publish(directory, ann, [
      shared,
      fileEntry('river'),
      fileEntry('river song live.flac'),
      { ...fileEntry('track 01.flac'), path: 'Music/River Song' } as ReturnType<typeof fileEntry>,
    ])
    await publish(directory, ben, [shared, fileEntry('song of the river.ogg'), fileEntry('riverside.mp3')])
    // One holder with many matches: the page takes its first few before its next ones.
    await publish(
      directory,
      cat,
      Array.from({ length: 8 }, (_, i) => fileEntry(`river song ${i}.mp3`, `cat ${i}`)),
    )
    await publish(directory, dan, [{ ...shared, name: 'River Song (remaster).mp3' }, fileEntry('other.txt')])
    const upTo = decodeCursor((await searchIn(directory, 'q=river')).cursor) ?? -1
    expect(upTo).toBeGreaterThan(before)
    const rows = await publishedBetween(directory.db, before, upTo, 1000)
    for (const query of [
      'river',
      'river song',
      'song river',
      'river song.mp3',
      'music river',
      'riv',
      'o',
      ' ',
    ]) {
      for (const limit of [3, 50]) {
        const inMemory = rankPublished(rows, query, limit)
        const inSql = await searchByNameSince(directory.db, query, directory.clock.now, limit, {
          after: before,
          upTo,
        })
        expect(inMemory, `${query} (limit ${limit})`).toEqual(inSql)
      }
    }
    expect(rankPublished(rows, 'river', 50).length).toBeGreaterThan(8)
  })

  it("fills a since page with live holders' rows only, never a down holder's", async () => {
    const directory = open()
    const start = await searchIn(directory, 'q=lark')
    const [eve = '', fay = ''] = await Promise.all([
      login(directory, 'eve', { url: 'http://127.0.0.1:50061' }),
      login(directory, 'fay', { url: 'http://127.0.0.1:50062' }),
    ])
    // eve publishes many matches first, then goes down; fay's one match comes after them.
    await publish(
      directory,
      eve,
      Array.from({ length: 6 }, (_, i) => fileEntry(`lark ${i}.ogg`, `eve ${i}`)),
    )
    await publish(directory, fay, [fileEntry('lark song.ogg', 'fay')])
    const logout = await directory.request('/v1/logout', { method: 'POST', token: eve })
    expect(logout.status).toBe(200)
    const page = await searchIn(directory, `q=lark&limit=1&since=${start.cursor}`)
    expect(names(page)).toEqual(['/lark song.ogg'])
  })

  it('of an index written in pieces (a pending generation), only rows new or changed are news', async () => {
    const directory = open()
    const carol = await login(directory, 'carol')
    // Over REPLACE_PIECE_BYTES of JSON: written in pieces, then flipped live.
    const bulk = Array.from({ length: 3000 }, (_, i) => fileEntry(`bulk ${i} ${'x'.repeat(100)}.dat`))
    const start = await searchIn(directory, 'q=bulk')
    await publish(directory, carol, [...bulk, fileEntry('wish bulk.dat')])
    const first = await searchIn(directory, `q=wish&since=${start.cursor}`)
    expect(names(first)).toEqual(['/wish bulk.dat'])
    await publish(directory, carol, [...bulk, { ...fileEntry('wish bulk.dat'), name: 'wish renamed.dat' }])
    expect(names(await searchIn(directory, `q=wish&since=${first.cursor}`))).toEqual(['/wish renamed.dat'])
    expect((await searchIn(directory, `q=bulk&since=${first.cursor}`)).results).toEqual([])
    // A PATCH big enough to be written the same way.
    const patch = await directory.request('/v1/index', {
      method: 'PATCH',
      token: carol,
      json: {
        add: Array.from({ length: 3000 }, (_, i) => fileEntry(`more ${i} ${'y'.repeat(100)}.dat`)),
        remove: [],
      },
    })
    expect(patch.status).toBe(200)
    const after = await searchIn(directory, `q=bulk&since=${first.cursor}`)
    expect(after.results).toEqual([])
    expect((await searchIn(directory, `q=more 2999&since=${first.cursor}`)).results).toHaveLength(1)
  })

  it('holds cursors across processes on one database and across a restart; older cursors still answer', async () => {
    const directory = open()
    const other = () =>
      createApp({
        db: directory.db,
        settings: parseSettings({ LEASE_SECONDS: '600' }),
        now: () => directory.clock.now,
        log: () => {},
      })
    const second = other()
    const ann = await login(directory, 'ann')
    const start = await searchIn(directory, 'q=wish')
    await publish(directory, ann, [fileEntry('wish one.mkv')])
    const one = await searchIn(second, `q=wish&since=${start.cursor}`)
    expect(names(one)).toEqual(['/wish one.mkv'])
    await publish(directory, ann, [fileEntry('wish one.mkv'), fileEntry('wish two.mkv')])
    const two = await searchIn(second, `q=wish&since=${one.cursor}`)
    expect(names(two)).toEqual(['/wish two.mkv'])
    // The second process kept (one, two]; a cursor older than that is read back from the database.
    expect(names(await searchIn(second, `q=wish&since=${start.cursor}`))).toEqual([
      '/wish one.mkv',
      '/wish two.mkv',
    ])
    // A restart: a new app over the same file answers the old cursors the same, and moves on from them.
    const restarted = other()
    expect(names(await searchIn(restarted, `q=wish&since=${one.cursor}`))).toEqual(['/wish two.mkv'])
    expect((await searchIn(restarted, `q=wish&since=${two.cursor}`)).results).toEqual([])
    await publish(directory, ann, [
      fileEntry('wish one.mkv'),
      fileEntry('wish two.mkv'),
      fileEntry('wish 3.mkv'),
    ])
    const three = await searchIn(restarted, `q=wish&since=${two.cursor}`)
    expect(names(three)).toEqual(['/wish 3.mkv'])
    expect(three.cursor).not.toBe(two.cursor)
  })
})
