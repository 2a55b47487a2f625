import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  createTestDirectory,
  fileEntry,
  login,
  publish,
  type TestDirectory,
} from '../support/directory-app.ts'

let directory: TestDirectory
let token: string
beforeEach(async () => {
  directory = createTestDirectory()
  token = await login(directory, 'alice')
  await publish(directory, token, [fileEntry('keep-1.txt'), fileEntry('keep-2.txt')])
})
afterEach(() => directory.close())

/** Everything a client can observe of the stored state, to compare before and after an attack. */
async function snapshot() {
  const peers = await (await directory.request('/v1/peers')).json()
  const search = await (await directory.request('/v1/search?q=keep')).json()
  const rows = await directory.db.execute('SELECT peer_id, sha256, name, size FROM files ORDER BY id')
  return { peers, names: search.results.map((r: { name: string }) => r.name).sort(), rows: rows.rows }
}

async function expectSpecError(response: Response, status: number) {
  expect(response.status).toBe(status)
  const body = await response.json()
  expect(Object.keys(body)).toEqual(['error'])
  expect(body.error.code).toMatch(/^[a-z_]+$/)
  expect(body.error.message.length).toBeGreaterThan(10)
  expect(body.error.message).not.toMatch(/at .*\.ts:\d+|stack/i)
  return body.error as { code: string; message: string }
}

const entry = (overrides: Record<string, unknown>) => ({ ...fileEntry('x.txt'), ...overrides })
const put = (body: unknown) => directory.request('/v1/index', { method: 'PUT', token, json: body })

describe('malformed input is refused with the SPEC error body and changes nothing', () => {
  const badEntries: [string, Record<string, unknown>][] = [
    ['a slash in the name', { name: 'dir/x.txt' }],
    ['a backslash in the name', { name: 'dir\\x.txt' }],
    ['a dot-dot name', { name: '..' }],
    ['a dot name', { name: '.' }],
    ['a NUL in the name', { name: 'x\u0000.txt' }],
    ['a newline in the name', { name: 'x\n.txt' }],
    ['an empty name', { name: '' }],
    ['a 256-byte name', { name: 'é'.repeat(128) }],
    ['a negative size', { size: -1 }],
    ['a fractional size', { size: 1.5 }],
    ['a size as a string', { size: '100' }],
    ['an upper-case hash', { sha256: 'A'.repeat(64) }],
    ['a short hash', { sha256: 'abc' }],
    ['a hash with SQL in it', { sha256: "' OR 1=1 --" }],
    ['a zero chunk size', { chunkSize: 0 }],
    ['a missing manifest', { manifest: undefined }],
    ['a null name', { name: null }],
  ]
  for (const [label, overrides] of badEntries) {
    it(`PUT /v1/index with ${label}`, async () => {
      const before = await snapshot()
      await expectSpecError(await put({ files: [fileEntry('fine.txt'), entry(overrides)] }), 400)
      expect(await snapshot()).toEqual(before)
    })
  }

  it('bad JSON, wrong top-level types and missing fields', async () => {
    const before = await snapshot()
    for (const body of ['{bad json', '[]', 'null', '"files"', '{"files": {}}', '{"files": "x"}', '{}']) {
      const response = await directory.request('/v1/index', {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body,
      })
      await expectSpecError(response, 400)
    }
    for (const json of [{ username: 'bob' }, { username: 'bob', password: 'short', url: 'http://h:1' }, 42]) {
      await expectSpecError(await directory.request('/v1/login', { method: 'POST', json }), 400)
    }
    expect(await snapshot()).toEqual(before)
  })

  it('login with hostile usernames and urls', async () => {
    const before = await snapshot()
    const cases = [
      { username: '../etc', password: 'password1', url: 'http://127.0.0.1:1' },
      { username: 'a'.repeat(65), password: 'password1', url: 'http://127.0.0.1:1' },
      { username: "x' OR '1'='1", password: 'password1', url: 'http://127.0.0.1:1' },
      { username: 'bob', password: 'password1', url: 'ftp://127.0.0.1:1' },
      { username: 'bob', password: 'password1', url: 'http://127.0.0.1' },
      { username: 'bob', password: 'password1', url: 'javascript:alert(1)' },
      { username: 'bob', password: 'x'.repeat(257), url: 'http://127.0.0.1:1' },
      // What `peer peers` would print raw: an escape sequence, a line break the URL parser drops, a space.
      { username: 'bob', password: 'password1', url: 'http://127.0.0.1:1/\u001b[2J\u001b[31mpwned' },
      { username: 'bob', password: 'password1', url: 'http://127.0.0.1:1/\nfake line' },
      { username: 'bob', password: 'password1', url: 'http://evil\t.example:1' },
      { username: 'bob', password: 'password1', url: 'http://127.0.0.1:1/ x' },
      { username: 'bob', password: 'password1', url: 'http://127.0.0.1:1/\u0085' },
    ]
    for (const json of cases)
      await expectSpecError(await directory.request('/v1/login', { method: 'POST', json }), 400)
    expect(await snapshot()).toEqual(before)
  })

  it('oversized bodies get 413 before being read whole', async () => {
    const before = await snapshot()
    const big = JSON.stringify({
      username: 'bob',
      password: 'x'.repeat(70 * 1024),
      url: 'http://127.0.0.1:1',
    })
    const error = await expectSpecError(
      await directory.request('/v1/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: big,
      }),
      413,
    )
    expect(error.code).toBe('payload_too_large')
    const huge = `{"files":[${`"${'x'.repeat(1024 * 1024)}",`.repeat(33)}""]}`
    await expectSpecError(
      await directory.request('/v1/index', {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: huge,
      }),
      413,
    )
    expect(await snapshot()).toEqual(before)
  })

  it('an index write without credentials is refused before its body is read', async () => {
    // Endless and without Content-Length: the body limit would read 32 MiB of it first.
    let pulled = 0
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++
        controller.enqueue(new Uint8Array(1024))
      },
    })
    const answer = await directory.request('/v1/index', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body,
      duplex: 'half',
    } as RequestInit)
    expect(answer.status).toBe(401)
    expect(pulled).toBeLessThan(100)
  })

  it('1 MB strings in every field are refused without echoing them', async () => {
    const before = await snapshot()
    const mega = 'a'.repeat(1024 * 1024)
    const response = await put({ files: [entry({ name: mega })] })
    const error = await expectSpecError(response, 400)
    expect(error.message.length).toBeLessThan(300)
    await expectSpecError(await directory.request(`/v1/search?q=${mega}`), 400)
    expect(await snapshot()).toEqual(before)
  })

  it('search and peers reject bad query parameters', async () => {
    await expectSpecError(await directory.request('/v1/search'), 400)
    await expectSpecError(await directory.request(`/v1/search?q=a&sha256=${'a'.repeat(64)}`), 400)
    await expectSpecError(await directory.request('/v1/search?q=a&limit=0'), 400)
    await expectSpecError(await directory.request('/v1/search?q=a&limit=lots'), 400)
    await expectSpecError(await directory.request('/v1/peers?state=sideways'), 400)
  })

  it('unicode and SQL metacharacters in valid names are stored and found literally', async () => {
    const names = ["Robert'); DROP TABLE peers;--.txt", '%_*.txt', 'naïve café 🎵.flac']
    await publish(
      directory,
      token,
      names.map((name) => fileEntry(name)),
    )
    for (const name of names) {
      const results = (await (await directory.request(`/v1/search?q=${encodeURIComponent(name)}`)).json())
        .results
      expect(results.map((r: { name: string }) => r.name)).toEqual([name])
    }
    const percent = (await (await directory.request('/v1/search?q=%25')).json()).results
    expect(percent.map((r: { name: string }) => r.name)).toEqual(['%_*.txt'])
  })

  it('unknown routes and methods get a JSON 404', async () => {
    await expectSpecError(await directory.request('/v1/nope'), 404)
    await expectSpecError(await directory.request('/v1/search', { method: 'DELETE' }), 404)
  })
})
