import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'libsql'
import { describe, expect, it } from 'vitest'
import worker from '../../directory-worker/src/entries/worker.ts'
import { startHranaServer } from '../support/hrana-server.ts'
import { openLocalD1 } from '../support/local-d1.ts'

// The Workers entry's own logic, run in Node: without LIBSQL_URL or a DB binding there is no app to
// build, so every request gets the SPEC's 503 body (and a later request with storage still builds it).
const context = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} }

describe('the Workers entry', () => {
  it('answers 503 storage_unavailable with the SPEC error body when it has no database', async () => {
    for (const path of ['/healthz', '/v1/search?q=x']) {
      const response = await worker.fetch(new Request(`http://127.0.0.1${path}`), {}, context)
      expect(response.status).toBe(503)
      const body = await response.json()
      expect(body).toEqual({
        error: { code: 'storage_unavailable', message: expect.stringMatching(/LIBSQL_URL/) },
      })
    }
  })

  it('uses LIBSQL_URL when it is set, even with a D1 binding DB', { timeout: 60_000 }, async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'peerdir-entry-')), 'turso.db')
    const hrana = await startHranaServer({ path, authToken: 'entry-token' })
    const d1 = await openLocalD1()
    try {
      const env = { LIBSQL_URL: hrana.url, LIBSQL_AUTH_TOKEN: 'entry-token', DB: d1.binding }
      const login = await worker.fetch(
        new Request('http://127.0.0.1/v1/login', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username: 'tess', password: 'tess password', url: 'http://127.0.0.1:5' }),
        }),
        env,
        context,
      )
      expect(login.status).toBe(200)
      const file = new Database(path, { readonly: true })
      expect(file.prepare('SELECT username FROM peers').all()).toEqual([{ username: 'tess' }])
      file.close()
      const tables = await d1.db.execute("SELECT count(*) AS n FROM sqlite_master WHERE name = 'peers'")
      expect(Number(tables.rows[0]?.n)).toBe(0)
    } finally {
      await d1.close()
      await hrana.close()
    }
  })
})
