// How many sources an answer lists: a name search a sample (`sources`, default 8) with sourceCount
// counting every live holder; by hash, up to 64 (what the downloader uses).
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createTestDirectory, fileEntry, type TestDirectory } from '../support/directory-app.ts'

let directory: TestDirectory
beforeEach(() => {
  directory = createTestDirectory({ LEASE_SECONDS: '30' })
})
afterEach(() => directory.close())

type Result = { name: string; sourceCount: number; sources: { username: string; url: string }[] }
const get = async (path: string) => {
  const response = await directory.request(path)
  expect(response.status, path).toBe(200)
  return response.json()
}
const names = (result: Result | undefined) => (result?.sources ?? []).map((source) => source.username)

/**
 * `live` peers that are up and `down` whose lease ran out, each holding one same content. Written
 * straight to the database: 80 logins would spend seconds on password hashing alone.
 */
async function holders(live: number, down: number) {
  await directory.request('/healthz') // the schema is made on the first request
  const now = directory.clock.now
  await directory.db.execute({
    sql: `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
          INSERT INTO peers (username, password_hash, url, lease_expires_at, last_seen, created_at)
          SELECT 'holder' || i, 'x', 'http://127.0.0.1:' || (20000 + i), CASE WHEN i <= ?2 THEN ?3 ELSE ?4 END, ?4, ?4
          FROM n`,
    args: [live + down, live, now + 3_600_000, now - 1],
  })
  const entry = fileEntry('popular song.mp3', 'popular')
  await directory.db.execute({
    sql: `INSERT INTO files (peer_id, sha256, name, name_key, size, chunk_size, manifest)
          SELECT id, ?, ?, ?, ?, ?, ? FROM peers WHERE username LIKE 'holder%'`,
    args: [entry.sha256, entry.name, entry.name.toLowerCase(), entry.size, entry.chunkSize, entry.manifest],
  })
  return entry
}

describe('sources per result', () => {
  it('a name search lists `sources` live holders (default 8), sampled afresh, and counts them all', async () => {
    const entry = await holders(70, 10)
    const [result, ...rest] = (await get('/v1/search?q=popular')).results as Result[]
    expect(rest).toEqual([])
    expect(result?.sourceCount).toBe(70)
    expect(result?.sources).toHaveLength(8)
    expect(new Set(names(result)).size).toBe(8)
    for (const name of names(result)) expect(Number(name.slice('holder'.length))).toBeLessThanOrEqual(70)
    const three = ((await get('/v1/search?q=popular&sources=3')).results as Result[])[0]
    expect(three).toMatchObject({ sourceCount: 70 })
    expect(three?.sources).toHaveLength(3)
    const most = ((await get('/v1/search?q=popular&sources=64')).results as Result[])[0]
    expect(most?.sources).toHaveLength(64)
    // By hash, as the downloader asks: up to 64, whatever `sources` says.
    const byHash = ((await get(`/v1/search?sha256=${entry.sha256}&sources=2`)).results as Result[])[0]
    expect(byHash).toMatchObject({ sourceCount: 70 })
    expect(byHash?.sources).toHaveLength(64)
    const file = (await get(`/v1/files/${entry.sha256}`)) as Result & { variants: Result[] }
    expect(file.sourceCount).toBe(70)
    expect(file.sources).toHaveLength(64)
    expect(file.variants[0]?.sources).toHaveLength(64)
    // The dashboard counts every live holder, though it lists only a few.
    const page = await (await directory.request('/?q=popular')).text()
    expect(page).toContain('70 live sources')
    expect(page).toContain(' and 67 more')
  })

  it('the sample changes between answers while the count stays', async () => {
    await holders(40, 0)
    const seen = new Set<string>()
    for (let i = 0; i < 10; i++) {
      directory.clock.advance(3) // past the reuse of a cached answer
      const [result] = (await get('/v1/search?q=popular')).results as Result[]
      expect(result?.sourceCount).toBe(40)
      for (const name of names(result)) seen.add(name)
    }
    expect(seen.size).toBeGreaterThan(8)
  })

  it('refuses a `sources` outside 1-64 with 400', async () => {
    for (const sources of ['0', '65', '-1', '2.5', 'many']) {
      const response = await directory.request(`/v1/search?q=popular&sources=${sources}`)
      expect(response.status, sources).toBe(400)
      expect((await response.json()).error.code).toBe('invalid_request')
    }
  })
})
