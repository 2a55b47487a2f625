import { describe, expect, it } from 'vitest'
import worker from '../../directory-worker/src/entries/worker.ts'

// The Workers entry's own logic, run in Node: without LIBSQL_URL there is no app to build, so every
// request gets the SPEC's 503 body (and a later request with the var set still builds the app).
const context = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} }

describe('the Workers entry without a database', () => {
  it('answers 503 storage_unavailable with the SPEC error body', async () => {
    for (const path of ['/healthz', '/v1/search?q=x']) {
      const response = await worker.fetch(new Request(`http://127.0.0.1${path}`), {}, context)
      expect(response.status).toBe(503)
      const body = await response.json()
      expect(body).toEqual({
        error: { code: 'storage_unavailable', message: expect.stringMatching(/LIBSQL_URL/) },
      })
    }
  })
})
