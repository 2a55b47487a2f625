import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { MAX_MANIFEST_CHUNKS } from '../../contract/schemas.ts'
import {
  createTestDirectory,
  fileEntry,
  login,
  publish,
  sha,
  type TestDirectory,
} from '../support/directory-app.ts'

let directory: TestDirectory
beforeEach(() => {
  directory = createTestDirectory({ LEASE_SECONDS: '30', MAX_FILES_PER_PEER: '50' })
})
afterEach(() => directory.close())

type Result = {
  name: string
  sha256: string
  size: number
  manifest: string
  sources: { username: string; url: string }[]
}
const search = async (query: string) => {
  const response = await directory.request(`/v1/search?${query}`)
  expect(response.status).toBe(200)
  return ((await response.json()) as { results: Result[] }).results
}

describe('index', () => {
  it('PUT replaces the whole index and PATCH removes then adds', async () => {
    const token = await login(directory, 'alice')
    const put = await directory.request('/v1/index', {
      method: 'PUT',
      token,
      json: { files: [fileEntry('a.txt'), fileEntry('b.txt'), fileEntry('c.txt')] },
    })
    expect(await put.json()).toEqual({ files: 3 })
    const replaced = await directory.request('/v1/index', {
      method: 'PUT',
      token,
      json: { files: [fileEntry('b.txt'), fileEntry('d.txt')] },
    })
    expect(await replaced.json()).toEqual({ files: 2 })
    expect((await search('q=a.txt')).length).toBe(0)
    expect((await search('q=d.txt')).map((r) => r.name)).toEqual(['d.txt'])

    const patch = await directory.request('/v1/index', {
      method: 'PATCH',
      token,
      json: { add: [fileEntry('e.txt')], remove: [fileEntry('b.txt').sha256, sha('never there')] },
    })
    expect(await patch.json()).toEqual({ files: 2 })
    expect((await search('q=.txt')).map((r) => r.name).sort()).toEqual(['d.txt', 'e.txt'])
  })

  it('a PATCH that renames a file (remove + add of the same content) keeps it under the new name', async () => {
    const token = await login(directory, 'alice')
    await publish(directory, token, [fileEntry('old-name.txt', 'x')])
    const response = await directory.request('/v1/index', {
      method: 'PATCH',
      token,
      json: { remove: [fileEntry('old-name.txt', 'x').sha256], add: [fileEntry('new-name.txt', 'x')] },
    })
    expect(await response.json()).toEqual({ files: 1 })
    expect((await search('q=name.txt')).map((r) => r.name)).toEqual(['new-name.txt'])
  })

  it('refuses more files than the per-peer limit with 413 and keeps the old index', async () => {
    const token = await login(directory, 'alice')
    await publish(directory, token, [fileEntry('keep.txt')])
    const many = Array.from({ length: 51 }, (_, i) => fileEntry(`f${i}.bin`))
    const put = await directory.request('/v1/index', { method: 'PUT', token, json: { files: many } })
    expect(put.status).toBe(413)
    expect((await put.json()).error.code).toBe('too_many_files')
    const patch = await directory.request('/v1/index', {
      method: 'PATCH',
      token,
      json: { add: many.slice(0, 50) },
    })
    expect(patch.status).toBe(413)
    expect((await search('q=keep.txt')).length).toBe(1)
    expect((await search('q=.bin')).length).toBe(0)
    const peers = (await (await directory.request('/v1/peers')).json()).peers
    expect(peers[0].files).toBe(1)
  })
})

describe('search', () => {
  it('ranks exact > prefix > substring, case-insensitively', async () => {
    const token = await login(directory, 'alice')
    await publish(directory, token, [
      fileEntry('the song.mp3'),
      fileEntry('Song.MP3 remix.flac'),
      fileEntry('song.mp3'),
      fileEntry('unrelated.txt'),
    ])
    const results = await search('q=SONG.mp3')
    expect(results.map((r) => r.name)).toEqual(['song.mp3', 'Song.MP3 remix.flac', 'the song.mp3'])
    // A long query (a pasted name) is looked up by two of its trigrams, then checked whole.
    const long = 'Live "at" the Harbor - 1999 Remaster.flac'
    await publish(directory, token, [
      fileEntry(`bootleg ${long}`),
      fileEntry('Live "at" the Ocean - 2001 Remaster.flac'),
      fileEntry(`${long.slice(0, 10)} and ${long.slice(-10)}`),
    ])
    expect((await search(`q=${encodeURIComponent(long.toUpperCase())}`)).map((r) => r.name)).toEqual([
      `bootleg ${long}`,
    ])
  })

  it('matches names shorter than a trigram and Unicode names', async () => {
    const token = await login(directory, 'alice')
    await publish(directory, token, [
      fileEntry('ab.txt'),
      fileEntry('Ärger über Öl.pdf'),
      fileEntry('日本語の本.epub'),
    ])
    expect((await search('q=ab')).map((r) => r.name)).toEqual(['ab.txt'])
    expect((await search('q=ärger')).map((r) => r.name)).toEqual(['Ärger über Öl.pdf'])
    expect((await search('q=%E6%9C%AC')).map((r) => r.name)).toEqual(['日本語の本.epub'])
  })

  it('treats FTS and SQL syntax in the query as plain text', async () => {
    const token = await login(directory, 'alice')
    await publish(directory, token, [
      fileEntry('a "quoted" OR name*.txt'),
      fileEntry("x'; DROP TABLE files;--.txt"),
    ])
    expect((await search(`q=${encodeURIComponent('"quoted" OR name*')}`)).length).toBe(1)
    expect((await search(`q=${encodeURIComponent("'; DROP TABLE")}`)).length).toBe(1)
    expect((await search('q=NEAR(a b)')).length).toBe(0)
    expect((await search('q=.txt')).length).toBe(2)
  })

  it('groups one content under one result with every live holder as a source, shuffled', async () => {
    for (const name of ['p1', 'p2', 'p3', 'p4']) {
      const token = await login(directory, name, { url: `http://127.0.0.1:5${name.slice(1)}000` })
      await publish(directory, token, [fileEntry(`shared-${name}.iso`, 'same content')])
    }
    const [result, ...rest] = await search('q=shared')
    expect(rest).toEqual([])
    expect(result?.sources.map((s) => s.username).sort()).toEqual(['p1', 'p2', 'p3', 'p4'])
    const firsts = new Set<string>()
    for (let i = 0; i < 40; i++) firsts.add((await search('q=shared'))[0]?.sources[0]?.username ?? '')
    expect(firsts.size).toBeGreaterThan(1)
  })

  it('finds content by sha256, and GET /v1/files/{sha256} answers it or 404', async () => {
    const token = await login(directory, 'alice')
    const entry = fileEntry('by-hash.bin')
    await publish(directory, token, [entry])
    expect((await search(`sha256=${entry.sha256}`)).map((r) => r.name)).toEqual(['by-hash.bin'])
    const file = await directory.request(`/v1/files/${entry.sha256}`)
    const answer = {
      ...entry,
      path: '',
      sourceCount: 1,
      sources: [{ username: 'alice', url: 'http://127.0.0.1:50051', key: null }],
    }
    expect(await file.json()).toEqual({ ...answer, variants: [answer] })
    const missing = await directory.request(`/v1/files/${sha('nobody has this')}`)
    expect(missing.status).toBe(404)
    expect((await missing.json()).error.code).toBe('not_found')
    expect((await directory.request('/v1/files/NOT-A-HASH')).status).toBe(400)
  })

  it('keeps holders that disagree about a content’s metadata apart, most live holders first', async () => {
    const entry = fileEntry('variant.iso', 'variant content')
    const liars = { manifest: { ...entry, manifest: 'f'.repeat(64) }, size: { ...entry, size: 999 } }
    const tokens: Record<string, string> = {}
    const publishAs = async (name: string, file: typeof entry, port: number) => {
      tokens[name] = await login(directory, name, { url: `http://127.0.0.1:${port}` })
      await publish(directory, tokens[name] as string, [file])
    }
    for (const [i, name] of ['h1', 'h2', 'h3'].entries()) await publishAs(name, entry, 51000 + i)
    await publishAs('liar', liars.manifest, 52000)
    await publishAs('shrinker', liars.size, 53000)
    const holders = (r: Result) => r.sources.map((s) => s.username).sort()
    // Ties (one holder each) in any order: compare those as sorted lists.
    const rows = (results: Result[]) => results.map((r) => `${r.manifest}:${r.size}:${holders(r)}`)
    const byName = await search('q=variant.iso')
    expect(byName.every((r) => r.sha256 === entry.sha256)).toBe(true)
    const honest = `${entry.manifest}:1000:h1,h2,h3`
    const lies = [`${'f'.repeat(64)}:1000:liar`, `${entry.manifest}:999:shrinker`].sort()
    expect(rows(byName)[0]).toBe(honest)
    expect(rows(byName).slice(1).sort()).toEqual(lies)
    const byHash = await search(`sha256=${entry.sha256}`)
    expect(rows(byHash)[0]).toBe(honest)
    expect(rows(byHash).slice(1).sort()).toEqual(lies)
    const file = (await (await directory.request(`/v1/files/${entry.sha256}`)).json()) as Result & {
      variants: Result[]
    }
    expect(rows([file])).toEqual([honest])
    expect(rows(file.variants)[0]).toBe(honest)
    expect(rows(file.variants).slice(1).sort()).toEqual(lies)
    // Two honest holders leave and a second account joins the liar: the liar's variant now leads.
    for (const name of ['h1', 'h2'])
      await directory.request('/v1/logout', { method: 'POST', token: tokens[name] })
    await publishAs('liar2', liars.manifest, 52001)
    expect(rows(await search('q=variant.iso'))[0]).toBe(`${'f'.repeat(64)}:1000:liar,liar2`)
    const after = (await (await directory.request(`/v1/files/${entry.sha256}`)).json()) as Result & {
      variants: Result[]
    }
    expect(after.manifest).toBe('f'.repeat(64))
    expect(after.variants.map((v) => v.sources.length)).toEqual([2, 1, 1])
  })

  it('refuses a FileEntry whose size needs more chunks than any manifest holds', async () => {
    const token = await login(directory, 'alice')
    const entry = fileEntry('huge.bin')
    const put = (file: typeof entry) =>
      directory.request('/v1/index', { method: 'PUT', token, json: { files: [file] } })
    expect((await put({ ...entry, size: Number.MAX_SAFE_INTEGER })).status).toBe(400)
    expect((await put({ ...entry, size: MAX_MANIFEST_CHUNKS * entry.chunkSize + 1 })).status).toBe(400)
    expect((await put({ ...entry, size: MAX_MANIFEST_CHUNKS * entry.chunkSize })).status).toBe(200)
    expect((await search('q=huge.bin')).map((r) => r.size)).toEqual([MAX_MANIFEST_CHUNKS * entry.chunkSize])
  })

  it('a peer whose lease expires is down at once and never offered as a source', async () => {
    const alice = await login(directory, 'alice')
    const bob = await login(directory, 'bob', { url: 'http://127.0.0.1:50052' })
    await publish(directory, alice, [fileEntry('common.bin', 'c')])
    await publish(directory, bob, [fileEntry('common.bin', 'c'), fileEntry('only-bob.bin')])
    directory.clock.advance(20)
    await directory.request('/v1/heartbeat', { method: 'POST', token: alice })
    directory.clock.advance(15)
    const [common] = await search('q=common')
    expect(common?.sources.map((s) => s.username)).toEqual(['alice'])
    expect(await search('q=only-bob')).toEqual([])
    const bobFile = await (await directory.request(`/v1/files/${fileEntry('only-bob.bin').sha256}`)).json()
    expect(bobFile.sources).toEqual([])
    const down = (await (await directory.request('/v1/peers?state=down')).json()).peers
    expect(down.map((p: { username: string }) => p.username)).toEqual(['bob'])
    const up = (await (await directory.request('/v1/peers?state=up')).json()).peers
    expect(up.map((p: { username: string }) => p.username)).toEqual(['alice'])
    const stats = await (await directory.request('/v1/stats')).json()
    expect(stats).toEqual({ peersUp: 1, peersTotal: 2, files: 1, uniqueFiles: 1, bytes: 1000 })
  })

  it('publishes 10,000 entries in one PUT and finds them', async () => {
    const big = createTestDirectory({ MAX_FILES_PER_PEER: '100000' })
    try {
      const bigToken = await login(big, 'alice')
      const files = Array.from({ length: 10_000 }, (_, i) =>
        fileEntry(`track-${String(i).padStart(5, '0')}.ogg`),
      )
      const response = await big.request('/v1/index', { method: 'PUT', token: bigToken, json: { files } })
      expect(await response.json()).toEqual({ files: 10_000 })
      const found = await big.request('/v1/search?q=track-09999')
      expect(((await found.json()) as { results: Result[] }).results.map((r) => r.name)).toEqual([
        'track-09999.ogg',
      ])
      const page = await big.request('/v1/search?q=track&limit=500')
      expect(((await page.json()) as { results: Result[] }).results).toHaveLength(500)
    } finally {
      big.close()
    }
  })
})
