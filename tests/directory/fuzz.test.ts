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
/** The fuzzer's own account: its valid writes may change its own index, never anyone else's data. */
let token: string
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

beforeAll(async () => {
  directory = createTestDirectory({ LOGIN_MAX_FAILURES: '1000000' })
  const alice = await login(directory, 'alice')
  await publish(directory, alice, [fileEntry('one.txt'), fileEntry('two.txt')])
  token = await login(directory, 'fuzzer')
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
  ['GET', '/v1/peers'],
  ['GET', '/v1/stats'],
] as const

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
        ),
        fc.boolean(),
        async ([method, path], body, withToken) => {
          // Logout would end the session the rest of the run uses; fuzz it without a token.
          const useToken = withToken && path !== '/v1/logout'
          const response = await directory.request(path, {
            method,
            json: body,
            token: useToken ? token : undefined,
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
        fc.string({ maxLength: 200 }),
        fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', ''),
        async ([method, path], bytes, query, contentType) => {
          const headers: Record<string, string> = contentType ? { 'content-type': contentType } : {}
          const init: RequestInit = { method, headers }
          if (method !== 'GET') init.body = bytes
          const response = await directory.request(
            `${path}?${encodeURIComponent(query)}=${encodeURIComponent(query)}`,
            init,
          )
          await expectSpecErrorOrSuccess(response)
        },
      ),
      { numRuns: 300 },
    )
  })

  it('arbitrary search text never fails and only finds names that contain it', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' }), async (q) => {
        const response = await directory.request(`/v1/search?q=${encodeURIComponent(q)}`)
        await expectSpecErrorOrSuccess(response.clone())
        if (response.status === 200) {
          const { results } = (await response.json()) as { results: { name: string }[] }
          for (const result of results) expect(result.name.toLowerCase()).toContain(q.toLowerCase())
        }
      }),
      { numRuns: 300 },
    )
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
