import { afterEach, describe, expect, it } from 'vitest'
import {
  createTestDirectory,
  fileEntry,
  login,
  publish,
  type TestDirectory,
} from '../support/directory-app.ts'

let directory: TestDirectory
afterEach(() => directory.close())

type Operation = {
  summary?: string
  responses?: Record<string, { content?: Record<string, { schema?: unknown }> }>
}

describe('operations endpoints', () => {
  it('healthz answers ok, and 503 with the SPEC body when storage is gone', async () => {
    directory = createTestDirectory()
    expect(await (await directory.request('/healthz')).json()).toEqual({ ok: true })
    directory.db.close()
    const down = await directory.request('/healthz')
    expect(down.status).toBe(503)
    expect((await down.json()).error.code).toBe('storage_unavailable')
    const search = await directory.request('/v1/search?q=abc')
    expect(search.status).toBe(503)
  })

  it('metrics count requests by route and status and report peers and files', async () => {
    directory = createTestDirectory()
    const token = await login(directory, 'alice')
    await publish(directory, token, [fileEntry('a.txt'), fileEntry('b.txt')])
    await directory.request('/v1/files/nothex')
    await directory.request('/v1/files/nothex')
    const text = await (await directory.request('/metrics')).text()
    expect(text).toContain(
      'peerdir_http_requests_total{method="GET",route="/v1/files/:sha256",status="400"} 2',
    )
    expect(text).toContain('peerdir_http_requests_total{method="POST",route="/v1/login",status="200"} 1')
    expect(text).toMatch(/peerdir_http_request_duration_seconds_bucket\{route="\/v1\/login",le="\+Inf"\} 1/)
    expect(text).toContain('peerdir_peers_up 1')
    expect(text).toContain('peerdir_peers 1')
    expect(text).toContain('peerdir_files_indexed 2')
  })

  it('names metrics as promtool checks them: only counters end in _total', async () => {
    directory = createTestDirectory()
    await directory.request('/healthz')
    const text = await (await directory.request('/metrics')).text()
    const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(([, name, type]) => ({ name, type }))
    expect(types.map((t) => t.name)).toContain('peerdir_peers')
    for (const { name, type } of types)
      expect({ name, counter: name?.endsWith('_total') }).toEqual({ name, counter: type === 'counter' })
  })

  it('serves an OpenAPI 3.1 document of every endpoint and a browsable page of it', async () => {
    directory = createTestDirectory()
    const doc = await (await directory.request('/openapi.json')).json()
    expect(doc.openapi).toBe('3.1.0')
    const operations = Object.fromEntries(
      Object.entries(doc.paths as Record<string, object>).map(([path, methods]) => [
        path,
        Object.keys(methods),
      ]),
    )
    expect(operations).toEqual({
      '/': ['get'],
      '/v1/login': ['post'],
      '/v1/logout': ['post'],
      '/v1/session': ['get'],
      '/v1/call-tokens': ['post'],
      '/v1/relay-tokens': ['post'],
      '/v1/sessions/{sid}': ['get'],
      '/v1/heartbeat': ['post'],
      '/v1/index': ['put', 'patch'],
      '/v1/search': ['get'],
      '/v1/files/{sha256}': ['get'],
      '/v1/peers': ['get'],
      '/v1/peers/{username}/files': ['get'],
      '/v1/presence': ['get'],
      '/v1/stats': ['get'],
      '/healthz': ['get'],
      '/.well-known/jwks.json': ['get'],
      '/metrics': ['get'],
      '/v1/admin/users': ['get', 'post'],
      '/v1/admin/users/{username}': ['delete'],
    })
    // Every operation says what it answers, and every JSON answer has a schema.
    for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, Operation>>)) {
      for (const [method, operation] of Object.entries(methods)) {
        expect(operation.summary, `${method} ${path}`).toMatch(/\w/)
        // The presence socket's success is its upgrade (101); every other operation answers 200 or 201.
        expect(
          operation.responses?.['200'] ?? operation.responses?.['201'] ?? operation.responses?.['101'],
          `${method} ${path}`,
        ).toBeDefined()
        for (const [status, response] of Object.entries(operation.responses ?? {})) {
          const json = response.content?.['application/json']
          if (json) expect(json.schema, `${method} ${path} ${status}`).toBeDefined()
        }
      }
    }
    const page = await directory.request('/docs')
    expect(page.headers.get('content-type')).toContain('text/html')
    const html = await page.text()
    expect(html).toContain('/v1/search')
    expect(html).toContain('href="/openapi.json"')
  })

  it('stats count live peers and distinct contents', async () => {
    directory = createTestDirectory()
    const a = await login(directory, 'alice')
    const b = await login(directory, 'bob')
    await publish(directory, a, [fileEntry('x', 'same', 100), fileEntry('y', 'y', 50)])
    await publish(directory, b, [fileEntry('x2', 'same', 100)])
    expect(await (await directory.request('/v1/stats')).json()).toEqual({
      peersUp: 2,
      peersTotal: 2,
      files: 3,
      uniqueFiles: 2,
      bytes: 150,
    })
  })

  it('pages through peers', async () => {
    directory = createTestDirectory()
    for (const name of ['a', 'b', 'c', 'd', 'e']) await login(directory, name)
    const page = await (await directory.request('/v1/peers?limit=2&offset=2')).json()
    expect(page.total).toBe(5)
    expect(page.peers.map((p: { username: string }) => p.username)).toEqual(['c', 'd'])
  })

  it('logs one line per request with method, path, status and request id', async () => {
    directory = createTestDirectory()
    await directory.request('/v1/stats', { headers: { 'x-request-id': 'req-42' } })
    expect(directory.logs.at(-1)).toMatch(/^GET \/v1\/stats 200 [\d.]+ms id=req-42$/)
  })

  it('logs a path that decodes to control characters percent-encoded, so no request forges a log line', async () => {
    directory = createTestDirectory()
    await directory.request('/v1/files/abc%0a2026-12-01T00:00:00Z%20POST%20/v1/login%20200%0d%1b[31m')
    const line = directory.logs.find((l) => l.includes('/v1/files/'))
    expect(line).toMatch(
      /^GET \/v1\/files\/abc%0A2026-12-01T00:00:00Z POST \/v1\/login 200%0D%1B\[31m \d{3} /,
    )
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
    expect(directory.logs.every((l) => !/[\u0000-\u001f]/.test(l))).toBe(true)
  })

  it('answers every response, errors too, with its request id', async () => {
    directory = createTestDirectory()
    const requests: [string, RequestInit, number][] = [
      ['/v1/stats', {}, 200],
      ['/v1/nowhere', {}, 404],
      ['/v1/search?limit=0&q=x', {}, 400],
      ['/v1/heartbeat', { method: 'POST' }, 401],
      [
        '/v1/login',
        { method: 'POST', body: 'x'.repeat(70_000), headers: { 'content-length': '70000' } },
        413,
      ],
    ]
    for (const [path, init, status] of requests) {
      const response = await directory.request(path, {
        ...init,
        headers: { ...init.headers, 'x-request-id': `id-${status}` },
      })
      expect(response.status).toBe(status)
      expect(response.headers.get('x-request-id')).toBe(`id-${status}`)
    }
    const generated = await directory.request('/v1/stats')
    expect(generated.headers.get('x-request-id')).toMatch(/^[\w.-]{8,}$/)
  })
})

describe('READ_REQUIRES_AUTH', () => {
  it('closes search, files, peers and stats to anyone without a valid token, and metrics without its secret', async () => {
    directory = createTestDirectory({ READ_REQUIRES_AUTH: 'true', REGISTRATION: 'open' })
    const token = await login(directory, 'alice')
    await publish(directory, token, [fileEntry('secret.txt')])
    for (const path of [
      '/v1/search?q=secret',
      `/v1/files/${fileEntry('secret.txt').sha256}`,
      '/v1/peers',
      '/v1/stats',
    ]) {
      const anonymous = await directory.request(path)
      expect(anonymous.status, path).toBe(401)
      expect((await anonymous.json()).error.code).toBe('missing_token')
      expect((await directory.request(path, { token })).status, path).toBe(200)
    }
    // A member's token is not the operator's metrics secret.
    const metrics = await directory.request('/metrics', { token })
    expect(metrics.status).toBe(401)
    expect((await metrics.json()).error.code).toBe('metrics_token_required')
  })

  it('closes registration by default, and REGISTRATION=open opens it again', async () => {
    directory = createTestDirectory({ READ_REQUIRES_AUTH: 'true' })
    const closed = await directory.request('/v1/login', {
      method: 'POST',
      json: { username: 'stranger', password: 'some password', url: 'http://127.0.0.1:1' },
    })
    expect(closed.status).toBe(403)
    expect((await closed.json()).error.code).toBe('registration_closed')
    directory.close()
    directory = createTestDirectory({ REGISTRATION: 'closed' })
    expect(
      (
        await directory.request('/v1/login', {
          method: 'POST',
          json: { username: 'x', password: 'some password', url: 'http://127.0.0.1:1' },
        })
      ).status,
    ).toBe(403)
  })

  it('leaves reads open by default', async () => {
    directory = createTestDirectory()
    expect((await directory.request('/v1/peers')).status).toBe(200)
  })
})

describe('the dashboard page', () => {
  it('renders the network server-side with hostile names escaped, under a strict CSP', async () => {
    directory = createTestDirectory()
    const token = await login(directory, 'alice')
    await publish(directory, token, [fileEntry('<script>alert(1)<script>.txt')])
    await login(directory, 'mallory', { url: 'http://127.0.0.1:50052' })
    const page = await directory.request('/')
    expect(page.status).toBe(200)
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'")
    const html = await page.text()
    expect(html).toContain('<span class="value" id="stat-peers">2 / 2</span>')
    expect(html).toContain('data-peer="mallory"')
    expect(html).not.toContain('<script>alert(1)')
    expect((await directory.request('/dashboard.js')).headers.get('content-type')).toContain(
      'text/javascript',
    )
  })
})
