import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createTestDirectory,
  fileEntry,
  login,
  publish,
  type TestDirectory,
} from '../support/directory-app.ts'

let directory: TestDirectory
const ADMIN_TOKEN = 'the fuzzed directory admin secret'
/** The fuzzer's own account: its valid writes may change its own index, never anyone else's data. */
let token: string
/** A call token the fuzzer holds for alice: good at her peer, refused by the directory. */
let callToken: string
let bystanderBefore: unknown

/** Everything stored about alice, who takes no part in the fuzzing. */
async function bystanderState() {
  const files = await directory.db.execute(
    "SELECT f.sha256, f.name, f.size, f.chunk_size, f.manifest FROM files f JOIN peers p ON p.id = f.peer_id WHERE p.username = 'alice' ORDER BY f.id",
  )
  const peer = await directory.db.execute(
    "SELECT username, url, password_hash, file_count, lease_expires_at FROM peers WHERE username = 'alice'",
  )
  return { files: files.rows, peer: peer.rows }
}

/**
 * What alice shares, so that searches find something: names built from words with case, accents,
 * ligatures, other scripts and emoji, many sharing words (and so substrings) with each other.
 */
const WORDS = [
  'Live',
  'live',
  'Ünïcödé',
  'straße',
  'STRASSE',
  'ﬁne',
  'Ωmega',
  'ωmega',
  'концерт',
  '東京',
  '🎵',
  'a.b',
  '%20',
  'x_y',
]
const CORPUS = Array.from({ length: 120 }, (_, i) => {
  const words = [
    WORDS[i % WORDS.length],
    WORDS[(i * 7 + 3) % WORDS.length],
    WORDS[(i * 11 + 5) % WORDS.length],
  ]
  return `${words.join(i % 2 ? ' ' : '-')} ${i}.${['flac', 'mp4', 'txt'][i % 3]}`
})

beforeAll(async () => {
  directory = createTestDirectory({ LOGIN_MAX_FAILURES: '1000000', ADMIN_TOKEN })
  const alice = await login(directory, 'alice')
  await publish(
    directory,
    alice,
    CORPUS.map((name) => fileEntry(name)),
  )
  token = await login(directory, 'fuzzer')
  const minted = await directory.request('/v1/call-tokens', {
    method: 'POST',
    token,
    json: { audience: 'alice' },
  })
  expect(minted.status).toBe(200)
  callToken = ((await minted.json()) as { token: string }).token
  bystanderBefore = await bystanderState()
})
afterAll(() => directory.close())

const routes = [
  ['POST', '/v1/login'],
  ['POST', '/v1/logout'],
  ['POST', '/v1/heartbeat'],
  ['PUT', '/v1/index'],
  ['PATCH', '/v1/index'],
  ['GET', '/v1/search'],
  ['GET', '/v1/files/'],
  ['GET', '/v1/peers'],
  ['GET', '/v1/session'],
  ['POST', '/v1/call-tokens'],
  ['GET', '/v1/sessions/'],
  ['GET', '/v1/stats'],
  ['GET', '/'],
  ['GET', '/metrics'],
  ['GET', '/healthz'],
  ['GET', '/openapi.json'],
  ['GET', '/.well-known/jwks.json'],
  ['GET', '/v1/admin/users'],
  ['POST', '/v1/admin/users'],
  ['DELETE', '/v1/admin/users/'],
] as const

/** The credential a route takes: the operator's secret on the admin calls, the fuzzer's token elsewhere. */
const credentialFor = (path: string) => (path.startsWith('/v1/admin/') ? ADMIN_TOKEN : token)
/** Routes that end in a path parameter, fuzzed with hash-like and junk tails. */
const withTail = (path: string) => path.endsWith('/') && path !== '/'

/** Every query parameter some route reads, so each is fuzzed often, and now and then one none reads. */
const queryKey = fc.oneof(
  {
    weight: 9,
    arbitrary: fc.constantFrom('q', 'sha256', 'limit', 'sources', 'state', 'sort', 'order', 'offset'),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
)
const queryValue = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.constantFrom('', '0', '-1', '1e309', '9007199254740993', 'up', 'down', 'desc', 'NaN'),
  fc.stringMatching(/^[0-9a-f]{64}$/),
)
const query = fc.array(fc.tuple(queryKey, queryValue), { maxLength: 4 })
/** What goes after `/v1/files/`: hashes, near-hashes and junk (encoded as a path segment). */
const pathTail = fc
  .oneof(fc.stringMatching(/^[0-9a-fA-F]{60,68}$/), fc.string({ maxLength: 80 }))
  // An admin DELETE of the bystander or the fuzzer itself would be a valid removal, not a fault.
  .filter((tail) => !['alice', 'fuzzer'].includes(tail.toLowerCase()))

/** A credential: none, the route's own (session token, or the admin secret), a call token, or a tampered one. */
const credential = fc.oneof(
  fc.constantFrom<string | undefined>(undefined, 'session', 'call'),
  fc.tuple(fc.nat(), fc.constantFrom(...'AQw_-.0')).map(([at, c]) => `tampered:${at}:${c}`),
)
const tokenFor = (choice: string | undefined, path: string) => {
  if (choice === undefined) return undefined
  if (choice === 'session') return credentialFor(path)
  if (choice === 'call') return callToken
  const [, at, c] = choice.split(':') as [string, string, string]
  const i = Number(at) % callToken.length
  return callToken.slice(0, i) + c + callToken.slice(i + 1)
}

async function expectSpecErrorOrSuccess(response: Response) {
  expect(response.status).toBeLessThan(500)
  if (response.status >= 400) {
    const body = await response.json()
    expect(Object.keys(body)).toEqual(['error'])
    expect(typeof body.error.code).toBe('string')
    expect(typeof body.error.message).toBe('string')
  } else {
    await response.arrayBuffer()
  }
}

describe('property-based fuzzing of the REST API', () => {
  it('arbitrary JSON bodies on every write route: never a 5xx, always the SPEC error body', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes.filter(([method]) => method !== 'GET')),
        fc.oneof(
          fc.jsonValue(),
          fc.record({ files: fc.array(fc.jsonValue(), { maxLength: 5 }) }),
          fc.record({
            add: fc.array(fc.jsonValue(), { maxLength: 5 }),
            remove: fc.array(fc.string(), { maxLength: 5 }),
          }),
          fc.record({ username: fc.string(), password: fc.string(), url: fc.string() }),
          // Accounts the admin call may make: some valid, so the 201 and 409 paths run too.
          fc.record({ username: fc.stringMatching(/^[a-z]{1,8}$/), password: fc.string({ maxLength: 12 }) }),
        ),
        credential,
        async ([method, path], body, choice) => {
          // Logout would end the session the rest of the run uses; fuzz it without the session token.
          const given = path === '/v1/logout' && choice === 'session' ? undefined : tokenFor(choice, path)
          const response = await directory.request(withTail(path) ? `${path}x` : path, {
            method,
            json: body,
            token: given,
          })
          await expectSpecErrorOrSuccess(response)
        },
      ),
      { numRuns: 300 },
    )
  })

  it('arbitrary byte strings as bodies and arbitrary query strings', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        fc.uint8Array({ maxLength: 2048 }),
        query,
        pathTail,
        fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', ''),
        credential,
        async ([method, route], bytes, params, tail, contentType, choice) => {
          const headers: Record<string, string> = contentType ? { 'content-type': contentType } : {}
          // Logout would end the session the rest of the run uses; fuzz it without the session token.
          const given = route === '/v1/logout' && choice === 'session' ? undefined : tokenFor(choice, route)
          if (given) headers.authorization = `Bearer ${given}`
          const init: RequestInit = { method, headers }
          if (method !== 'GET') init.body = bytes
          const path = withTail(route) ? `${route}${encodeURIComponent(tail)}` : route
          const search = new URLSearchParams(params).toString()
          const response = await directory.request(`${path}?${search}`, init)
          // The dashboard never refuses a link; the others answer the SPEC body when they refuse.
          if (route === '/') expect(response.status).toBe(200)
          await expectSpecErrorOrSuccess(response)
        },
      ),
      { numRuns: 600 },
    )
  })

  it('a call token, intact or with any character changed, acts for nobody at the directory', async () => {
    // The admin calls take the operator's secret, never a peer's token: their refusals are their own.
    const guarded = routes.filter(
      ([method, route]) =>
        !route.startsWith('/v1/admin/') && (method !== 'GET' ? route !== '/v1/login' : /session/.test(route)),
    )
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...guarded),
        credential.filter((c) => c !== undefined && c !== 'session'),
        fc.jsonValue(),
        async ([method, route], choice, body) => {
          const path = withTail(route) ? `${route}x` : route
          const init = method === 'GET' ? { method } : { method, json: body }
          const response = await directory.request(path, { ...init, token: tokenFor(choice, route) })
          expect(response.status, `${method} ${path}`).toBe(401)
          const { error } = await response.json()
          // An intact call token is named as one; a changed one (unless the change is a no-op) is just invalid.
          expect(['call_token', 'invalid_token', 'missing_token']).toContain(error.code)
          if (tokenFor(choice, route) === callToken) expect(error.code).toBe('call_token')
        },
      ),
      { numRuns: 200 },
    )
    // The fuzzer's session outlived every one of them: none could log it out.
    expect((await directory.request('/v1/session', { token })).status).toBe(200)
  })

  it('any search text finds exactly the shared names that contain each of its words, ignoring case', async () => {
    // Mostly pieces of shared names (cut on code points, so never half a surrogate pair), so most
    // searches find something; the rest arbitrary text.
    const pieceOfAName = fc
      .constantFrom(...CORPUS.map((name) => Array.from(name)))
      .chain((points) =>
        fc
          .integer({ min: 0, max: points.length - 1 })
          .chain((start) =>
            fc
              .integer({ min: start + 1, max: points.length })
              .map((end) => points.slice(start, end).join('')),
          ),
      )
    const text = fc.oneof(
      { weight: 4, arbitrary: pieceOfAName },
      { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' }) },
    )
    let found = 0
    await fc.assert(
      fc.asyncProperty(text, async (q) => {
        const response = await directory.request(`/v1/search?${new URLSearchParams({ q, limit: '500' })}`)
        await expectSpecErrorOrSuccess(response.clone())
        expect(response.status).toBe(200)
        const { results } = (await response.json()) as { results: { name: string }[] }
        // SPEC: the query's words (split at spaces; `/` too, as no name holds one), each in the name
        // (these are shared at the top); text with no word at all is looked for whole.
        const key = q.toLowerCase()
        const words = key.split(/[\s/]+/u).filter((word) => word !== '')
        const expected = CORPUS.filter((name) =>
          words.length === 0
            ? name.toLowerCase().includes(key)
            : words.every((word) => name.toLowerCase().includes(word)),
        )
        expect(results.map((r) => r.name).sort()).toEqual(expected.sort())
        if (expected.length > 0) found++
      }),
      { numRuns: 400 },
    )
    // The property held for searches that found something, not only for empty answers.
    expect(found).toBeGreaterThan(200)
  })

  it("left a consistent database and a bystander's data untouched", async () => {
    expect(await bystanderState()).toEqual(bystanderBefore)
    const counts = await directory.db.execute(
      'SELECT p.file_count AS stored, (SELECT count(*) FROM files f WHERE f.peer_id = p.id) AS actual FROM peers p',
    )
    for (const row of counts.rows) expect(Number(row.stored)).toBe(Number(row.actual))
    const integrity = await directory.db.execute('PRAGMA integrity_check')
    expect(integrity.rows[0]?.[0]).toBe('ok')
    // FTS5 raises an error here if the trigram index and the files table disagree.
    await directory.db.execute("INSERT INTO files_fts (files_fts) VALUES ('integrity-check')")
  })
})
