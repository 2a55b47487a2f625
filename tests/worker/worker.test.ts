import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'libsql'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { dashboardJs } from '../../directory-worker/src/dashboard/script.gen.ts'
import { dashboardCss } from '../../directory-worker/src/dashboard/styles.ts'
import { fileEntry } from '../support/directory-app.ts'
import { type HranaServer, startHranaServer } from '../support/hrana-server.ts'
import { startWranglerDev, type WranglerDev } from '../support/wrangler-dev.ts'

// The Workers build in real workerd (wrangler dev) against libSQL over HTTP: the Hrana stand-in for
// Turso serves a real libSQL file, so the same app and SQL run as in production on Workers.
let hrana: HranaServer
let worker: WranglerDev
let dbPath: string

beforeAll(async () => {
  dbPath = join(mkdtempSync(join(tmpdir(), 'peerdir-worker-')), 'turso-stand-in.db')
  hrana = await startHranaServer({ path: dbPath, authToken: 'worker-test-token' })
  worker = await startWranglerDev({
    LIBSQL_URL: hrana.url,
    LIBSQL_AUTH_TOKEN: 'worker-test-token',
    LEASE_SECONDS: '60',
  })
}, 120_000)
afterAll(async () => {
  await worker?.stop()
  await hrana?.close()
})

const call = (path: string, init: { method?: string; token?: string; json?: unknown } = {}) =>
  fetch(`${worker.url}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
    },
    body: init.json !== undefined ? JSON.stringify(init.json) : undefined,
  })

describe('the directory on Workers (workerd) over libSQL HTTP', () => {
  it('logs in, publishes, searches, heartbeats and logs out like on Node', async () => {
    expect(await (await call('/healthz')).json()).toEqual({ ok: true })
    const login = await call('/v1/login', {
      method: 'POST',
      json: { username: 'wanda', password: 'worker password', url: 'http://127.0.0.1:50061' },
    })
    expect(login.status).toBe(200)
    const { token, peer } = await login.json()
    expect(peer).toMatchObject({ username: 'wanda', state: 'up' })

    const entry = fileEntry('edge-song.ogg')
    const put = await call('/v1/index', {
      method: 'PUT',
      token,
      json: { files: [entry, fileEntry('other.txt')] },
    })
    expect(await put.json()).toEqual({ files: 2 })
    const search = await (await call('/v1/search?q=EDGE')).json()
    expect(search.results).toEqual([
      {
        ...entry,
        path: '',
        sourceCount: 1,
        sources: [{ username: 'wanda', url: 'http://127.0.0.1:50061', key: null }],
      },
    ])
    expect((await (await call(`/v1/files/${entry.sha256}`)).json()).name).toBe('edge-song.ogg')
    const patch = await call('/v1/index', { method: 'PATCH', token, json: { remove: [entry.sha256] } })
    expect(await patch.json()).toEqual({ files: 1 })
    // Concurrent deltas of one account: one index write at a time (in this isolate); the others are
    // refused with 429 and Retry-After, and none fails otherwise.
    const extra = fileEntry('extra.bin')
    const patches = await Promise.all(
      [1, 2, 3].map(() => call('/v1/index', { method: 'PATCH', token, json: { add: [extra] } })),
    )
    const answers = await Promise.all(patches.map(async (r) => ({ status: r.status, body: await r.json() })))
    expect(answers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(1)
    for (const answer of answers) {
      if (answer.status === 200) expect(answer.body).toEqual({ files: 2 })
      else expect(answer).toMatchObject({ status: 429, body: { error: { code: 'index_write_in_progress' } } })
    }
    expect(
      patches.filter((r) => r.status === 429).every((r) => /^\d+$/.test(r.headers.get('retry-after') ?? '')),
    ).toBe(true)
    const undo = await call('/v1/index', { method: 'PATCH', token, json: { remove: [extra.sha256] } })
    expect(await undo.json()).toEqual({ files: 1 })

    const beat = await call('/v1/heartbeat', { method: 'POST', token })
    expect(beat.status).toBe(200)
    const fresh = (await beat.json()).token ?? token
    const jwks = await (await call('/.well-known/jwks.json')).json()
    expect(jwks.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519' })

    const out = await call('/v1/logout', { method: 'POST', token: fresh })
    expect((await out.json()).peer.state).toBe('down')
    const refused = await call('/v1/heartbeat', { method: 'POST', token: fresh })
    expect(refused.status).toBe(401)
    expect((await refused.json()).error.code).toBe('session_revoked')
  })

  it('answers bad input with the SPEC error body', async () => {
    const bad = await call('/v1/login', {
      method: 'POST',
      json: { username: '../x', password: 'short', url: 'nope' },
    })
    expect(bad.status).toBe(400)
    expect((await bad.json()).error.code).toBe('invalid_request')
    const notFound = await call(`/v1/files/${'0'.repeat(64)}`)
    expect(notFound.status).toBe(404)
    const dashboard = await call('/')
    expect(dashboard.headers.get('content-type')).toContain('text/html')
    expect(await dashboard.text()).toContain('peerdir network')
    expect((await call('/docs')).status).toBe(200)
    const stats = await (await call('/v1/stats')).json()
    expect(stats).toMatchObject({ peersTotal: 1, peersUp: 0 })
  })

  it('serves the dashboard’s own script and styles, as the page and its policy ask for them', async () => {
    const page = await call('/')
    const csp = page.headers.get('content-security-policy') ?? ''
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain("style-src 'self'")
    const html = await page.text()
    expect(html).toContain('<script src="/dashboard.js" defer')
    expect(html).toMatch(/<link[^>]+href="\/dashboard\.css"/)
    const script = await call('/dashboard.js')
    expect(script.status).toBe(200)
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    expect(script.headers.get('cache-control')).toBe('no-cache')
    // The browser script built from browser.ts, byte for byte, through the Workers bundle.
    expect(await script.text()).toBe(dashboardJs)
    const styles = await call('/dashboard.css')
    expect(styles.status).toBe(200)
    expect(styles.headers.get('content-type')).toBe('text/css; charset=utf-8')
    expect(await styles.text()).toBe(dashboardCss)
  })

  it('keeps its data in the libSQL file behind the HTTP server', () => {
    const file = new Database(dbPath, { readonly: true })
    try {
      expect(file.prepare('SELECT username FROM peers').all()).toEqual([{ username: 'wanda' }])
      expect(file.prepare('SELECT name FROM files').all()).toEqual([{ name: 'other.txt' }])
      expect((file.prepare('SELECT count(*) AS n FROM signing_keys').get() as { n: number }).n).toBe(1)
    } finally {
      file.close()
    }
  })

  it('answers 503 with the SPEC body when its database is unreachable', async () => {
    await hrana.close()
    const response = await call('/v1/search?q=edge')
    expect(response.status).toBe(503)
    expect((await response.json()).error.code).toBe('storage_unavailable')
  })
})
