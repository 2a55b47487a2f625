// Searches reuse answers while nothing they depend on changed; these pin down that every change shows
// at once, with the clock standing still (so no reuse window can hide a stale answer).
import { createClient } from '@libsql/client'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createApp } from '../../directory-worker/src/app.ts'
import { parseSettings } from '../../directory-worker/src/settings.ts'
import {
  createTestDirectory,
  fileEntry,
  login,
  publish,
  type TestDirectory,
} from '../support/directory-app.ts'

let directory: TestDirectory
beforeEach(() => {
  directory = createTestDirectory({ LEASE_SECONDS: '30' })
})
afterEach(() => directory.close())

type Result = { name: string; sources: { username: string; url: string }[] }
const searchIn = async (app: { request: (path: string) => Response | Promise<Response> }, query: string) => {
  const response = await app.request(`/v1/search?${query}`)
  expect(response.status).toBe(200)
  return ((await response.json()) as { results: Result[] }).results
}
const search = (query: string) => searchIn(directory, query)
const holders = async (query: string) =>
  (await search(query)).flatMap((result) => result.sources.map((source) => source.username)).sort()

describe('reused search answers', () => {
  it('show a logout, an index change and a new holder at once, by name and by hash', async () => {
    const entry = fileEntry('cached song.mp3', 'song')
    const alice = await login(directory, 'alice')
    const bob = await login(directory, 'bob', { url: 'http://127.0.0.1:50052' })
    await publish(directory, alice, [entry])
    await publish(directory, bob, [entry])
    expect(await holders('q=cached')).toEqual(['alice', 'bob'])
    expect(await holders(`sha256=${entry.sha256}`)).toEqual(['alice', 'bob'])

    await directory.request('/v1/logout', { method: 'POST', token: bob })
    expect(await holders('q=cached')).toEqual(['alice'])
    expect(await holders(`sha256=${entry.sha256}`)).toEqual(['alice'])

    await directory.request('/v1/index', {
      method: 'PATCH',
      token: alice,
      json: { add: [], remove: [entry.sha256] },
    })
    expect(await search('q=cached')).toEqual([])
    expect(await search(`sha256=${entry.sha256}`)).toEqual([])

    const carol = await login(directory, 'carol', { url: 'http://127.0.0.1:50053' })
    await publish(directory, carol, [entry])
    expect(await holders('q=cached')).toEqual(['carol'])
    expect(await holders(`sha256=${entry.sha256}`)).toEqual(['carol'])
  })

  it('drop a holder whose lease ran out, and take it back when its heartbeat revives it', async () => {
    const alice = await login(directory, 'alice')
    const bob = await login(directory, 'bob', { url: 'http://127.0.0.1:50052' })
    await publish(directory, alice, [fileEntry('lease.bin', 'lease')])
    await publish(directory, bob, [fileEntry('lease.bin', 'lease')])
    expect(await holders('q=lease')).toEqual(['alice', 'bob'])
    directory.clock.advance(20)
    await directory.request('/v1/heartbeat', { method: 'POST', token: alice })
    directory.clock.advance(11)
    expect(await holders('q=lease')).toEqual(['alice'])
    const beat = await directory.request('/v1/heartbeat', { method: 'POST', token: bob })
    expect(beat.status).toBe(200)
    expect(await holders('q=lease')).toEqual(['alice', 'bob'])
  })

  it('show a peer’s new url after it logs in from there', async () => {
    await publish(directory, await login(directory, 'alice'), [fileEntry('moving.txt')])
    expect((await search('q=moving'))[0]?.sources).toEqual([
      { username: 'alice', url: 'http://127.0.0.1:50051', key: null },
    ])
    await login(directory, 'alice', { url: 'http://10.0.0.7:50051' })
    expect((await search('q=moving'))[0]?.sources).toEqual([
      { username: 'alice', url: 'http://10.0.0.7:50051', key: null },
    ])
  })

  it('are not reused by one process after another one changed the database', async () => {
    // Two apps over one database file, as two Node processes or two Worker isolates.
    const otherDb = createClient({ url: `file:${directory.dbPath}` })
    const other = createApp({
      db: otherDb,
      settings: parseSettings({ LEASE_SECONDS: '30' }),
      now: () => directory.clock.now,
      log: () => {},
    })
    try {
      const alice = await login(directory, 'alice')
      await publish(directory, alice, [fileEntry('shared.iso')])
      expect((await searchIn(other, 'q=shared')).length).toBe(1)
      await directory.request('/v1/logout', { method: 'POST', token: alice })
      expect(await searchIn(other, 'q=shared')).toEqual([])
      const again = await login(directory, 'alice')
      expect((await searchIn(other, 'q=shared')).length).toBe(1)
      await directory.request('/v1/index', { method: 'PUT', token: again, json: { files: [] } })
      expect(await searchIn(other, 'q=shared')).toEqual([])
    } finally {
      otherDb.close()
    }
  })

  it('are written as the same JSON text c.json gives, with the request id', async () => {
    const name = 'Ärger "quoted" 日本 <b>&amp;.txt'
    await publish(directory, await login(directory, 'alice'), [fileEntry(name)])
    for (const query of [
      `q=${encodeURIComponent('"quoted"')}`,
      `sha256=${fileEntry(name).sha256}`,
      'q=none',
    ]) {
      for (let i = 0; i < 2; i++) {
        const response = await directory.request(`/v1/search?${query}`, { headers: { 'x-request-id': 'r1' } })
        expect(response.headers.get('content-type')).toMatch(/^application\/json/)
        expect(response.headers.get('x-request-id')).toBe('r1')
        const text = await response.text()
        expect(JSON.stringify(JSON.parse(text))).toBe(text)
      }
    }
    for (const spelling of ['ärger', 'ÄRGER', 'Ärger', 'ärger']) {
      const body = await (await directory.request(`/v1/search?q=${encodeURIComponent(spelling)}`)).json()
      expect(body.query).toBe(spelling)
      expect(body.results.map((r: Result) => r.name)).toEqual([name])
    }
    const [found] = await search(`q=${encodeURIComponent('"quoted"')}`)
    expect(found).toEqual({
      ...fileEntry(name),
      path: '',
      sourceCount: 1,
      sources: [{ username: 'alice', url: 'http://127.0.0.1:50051', key: null }],
    })
  })

  it('see every write acknowledged before the search was sent, whatever searches are in flight', async () => {
    const entry = fileEntry('busy.bin')
    const alice = await login(directory, 'alice')
    const bob = await login(directory, 'bob', { url: 'http://127.0.0.1:50052' })
    await publish(directory, alice, [entry])
    await publish(directory, bob, [entry])
    const inFlight = Array.from({ length: 10 }, () => holders('q=busy'))
    const logout = await directory.request('/v1/logout', { method: 'POST', token: bob })
    expect(logout.status).toBe(200)
    expect(await holders('q=busy')).toEqual(['alice'])
    expect(await holders(`sha256=${entry.sha256}`)).toEqual(['alice'])
    for (const answer of await Promise.all(inFlight))
      expect([['alice'], ['alice', 'bob']]).toContainEqual(answer)
  })

  it('shuffle their sources afresh on every answer', async () => {
    for (const name of ['p1', 'p2', 'p3', 'p4', 'p5']) {
      const token = await login(directory, name, { url: `http://127.0.0.1:5${name.slice(1)}000` })
      await publish(directory, token, [fileEntry(`popular-${name}.iso`, 'popular')])
    }
    const orders = new Set<string>()
    for (let i = 0; i < 30; i++) {
      orders.add((await search('q=popular'))[0]?.sources.map((s) => s.username).join() ?? '')
    }
    expect(orders.size).toBeGreaterThan(1)
  })
})
