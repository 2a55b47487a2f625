import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { startNodeDirectory } from '../../directory-worker/src/entries/node.ts'
import { createTestDirectory, fileEntry, sha, type TestDirectory } from '../support/directory-app.ts'
import { DocumentedAnswers } from '../support/openapi-answers.ts'

const ADMIN_TOKEN = 'admin secret of sixteen+'
const opened: TestDirectory[] = []
afterAll(() => {
  for (const directory of opened) directory.close()
})

let answers: DocumentedAnswers
beforeAll(async () => {
  const directory = open()
  answers = new DocumentedAnswers(await (await directory.request('/openapi.json')).json())
})

function open(env: Record<string, string> = {}) {
  const directory = createTestDirectory(env)
  opened.push(directory)
  return directory
}

type Init = { token?: string; json?: unknown; body?: string; headers?: Record<string, string> }

/** Calls the real app and checks the answer against the document; answers status and body. */
const caller =
  (directory: TestDirectory) =>
  async (method: string, path: string, init: Init = {}) => {
    const response = await directory.request(path, { method, ...init })
    const status = response.status
    const body = (await answers.check(method, path, response)) as { token: string; error: { code: string } }
    return { status, body }
  }

/**
 * The held write takes its slot once its credentials are checked, a few awaits after it starts: a
 * second write made before that is let in and answered normally, so it is made again until it is
 * refused (the held one keeps its slot until its body ends).
 */
async function until429(write: () => Promise<{ status: number; body: { error: { code: string } } }>) {
  for (let attempt = 0; attempt < 50; attempt++) {
    const answer = await write()
    if (answer.status === 429) return answer
  }
  throw new Error('a write was never refused while another held the slot')
}

const peerLogin = (username: string, password = 'correct horse') => ({
  json: { username, password, url: 'http://127.0.0.1:50051' },
})
const oversized = JSON.stringify({ padding: 'x'.repeat(65 * 1024) })
const asText = { body: '{"username":"alice"}', headers: { 'content-type': 'text/plain' } }

describe('every answer of the directory, checked against its OpenAPI document', () => {
  it('documents search since a cursor: the since parameter and the cursor every answer has', async () => {
    const document = (await (await open().request('/openapi.json')).json()) as {
      paths: Record<string, { get: { parameters: { name: string; in: string }[] } }>
      components: { schemas: Record<string, { required?: string[]; properties: Record<string, unknown> }> }
    }
    const parameters = document.paths['/v1/search']?.get.parameters ?? []
    expect(parameters).toContainEqual(expect.objectContaining({ name: 'since', in: 'query' }))
    const answer = document.components.schemas.SearchResponse
    expect(answer?.properties).toHaveProperty('cursor')
    expect(answer?.required).toContain('cursor')
  })

  it('logins, sessions, heartbeats and call tokens', async () => {
    const call = caller(open({ LOGIN_MAX_FAILURES: '2' }))
    const peer = (await call('POST', '/v1/login', peerLogin('alice'))).body.token
    expect(peer).toBeTypeOf('string')
    const viewer = (
      await call('POST', '/v1/login', { json: { username: 'alice', password: 'correct horse' } })
    ).body.token
    expect((await call('POST', '/v1/login', { json: { username: 'a b' } })).status).toBe(400)
    expect(
      (await call('POST', '/v1/login', { body: '{', headers: { 'content-type': 'application/json' } }))
        .status,
    ).toBe(400)
    expect(
      (await call('POST', '/v1/login', { json: { username: 'nobody', password: 'whatever1' } })).status,
    ).toBe(401)
    expect((await call('POST', '/v1/login', asText)).status).toBe(415)
    expect(
      (await call('POST', '/v1/login', { body: oversized, headers: { 'content-type': 'application/json' } }))
        .status,
    ).toBe(413)
    await call('POST', '/v1/login', peerLogin('lou'))
    expect((await call('POST', '/v1/login', peerLogin('lou', 'wrong password'))).status).toBe(401)
    expect((await call('POST', '/v1/login', peerLogin('lou', 'wrong password'))).status).toBe(401)
    expect((await call('POST', '/v1/login', peerLogin('lou'))).body.error.code).toBe('too_many_attempts')

    expect((await call('GET', '/v1/session', { token: peer })).status).toBe(200)
    expect((await call('GET', '/v1/session')).status).toBe(401)
    expect((await call('POST', '/v1/heartbeat', { token: peer })).status).toBe(200)
    expect((await call('POST', '/v1/heartbeat', { token: viewer })).status).toBe(403)
    expect((await call('POST', '/v1/heartbeat', { token: 'not.a.token' })).status).toBe(401)
    expect((await call('POST', '/v1/heartbeat', { token: peer, body: oversized })).status).toBe(413)

    const calling = await call('POST', '/v1/call-tokens', { token: peer, json: { audience: 'lou' } })
    expect(calling.status).toBe(200)
    expect(
      (await call('POST', '/v1/call-tokens', { token: peer, json: { audience: 'no one' } })).status,
    ).toBe(400)
    expect(
      (await call('POST', '/v1/call-tokens', { token: peer, json: { audience: 'nobody' } })).status,
    ).toBe(404)
    expect(
      (await call('POST', '/v1/call-tokens', { token: calling.body.token, json: { audience: 'lou' } })).body
        .error.code,
    ).toBe('call_token')
    expect((await call('POST', '/v1/call-tokens', { token: peer, ...asText })).status).toBe(415)
    expect((await call('POST', '/v1/call-tokens', { token: peer, body: oversized })).status).toBe(413)
    const relaying = await call('POST', '/v1/relay-tokens', {
      token: peer,
      json: { relay: 'http://192.0.2.1:7000' },
    })
    expect(relaying.status).toBe(200)
    const relayPath = '/v1/relay-tokens'
    expect(
      (await call('POST', relayPath, { token: peer, json: { relay: 'http://192.0.2.1:7000/x' } })).status,
    ).toBe(400)
    expect((await call('POST', relayPath, { json: { relay: 'http://192.0.2.1:7000' } })).status).toBe(401)
    expect(
      (await call('POST', relayPath, { token: viewer, json: { relay: 'http://192.0.2.1:7000' } })).status,
    ).toBe(403)
    expect((await call('POST', relayPath, { token: peer, ...asText })).status).toBe(415)
    expect((await call('POST', relayPath, { token: peer, body: oversized })).status).toBe(413)
    expect((await call('GET', '/v1/sessions/some-session', { token: peer })).body).toEqual({
      open: false,
      up: false,
    })
    expect((await call('GET', `/v1/sessions/${'s'.repeat(129)}`, { token: peer })).status).toBe(400)
    expect((await call('GET', '/v1/sessions/some-session')).status).toBe(401)

    expect((await call('POST', '/v1/logout', { token: peer, body: oversized })).status).toBe(413)
    expect((await call('POST', '/v1/logout', { token: peer })).status).toBe(200)
    expect((await call('POST', '/v1/logout', { token: peer })).body.error.code).toBe('session_revoked')
  })

  it('index writes, search, files, peers, stats and the open pages', async () => {
    const directory = open({ MAX_FILES_PER_PEER: '2' })
    const call = caller(directory)
    const peer = (await call('POST', '/v1/login', peerLogin('alice'))).body.token
    const viewer = (
      await call('POST', '/v1/login', { json: { username: 'alice', password: 'correct horse' } })
    ).body.token
    const files = [fileEntry('a.txt'), fileEntry('b.txt')]
    for (const [method, ok, many, bad] of [
      ['PUT', { files }, { files: [...files, fileEntry('c.txt')] }, { files: [{ name: '..' }] }],
      ['PATCH', { add: files }, { add: [fileEntry('c.txt')] }, { add: [{ name: '..' }] }],
    ] as const) {
      expect((await call(method, '/v1/index', { token: peer, json: ok })).body).toEqual({ files: 2 })
      expect((await call(method, '/v1/index', { token: peer, json: many })).body.error.code).toBe(
        'too_many_files',
      )
      expect((await call(method, '/v1/index', { token: peer, json: bad })).status).toBe(400)
      expect((await call(method, '/v1/index', { json: ok })).status).toBe(401)
      expect((await call(method, '/v1/index', { token: viewer, json: ok })).status).toBe(403)
      expect((await call(method, '/v1/index', { token: peer, ...asText })).status).toBe(415)
    }

    // A second write of the account while one is still receiving its body: 429 with Retry-After.
    for (const method of ['PUT', 'PATCH']) {
      // The held write leaves the index as it was: the same two files.
      const head = method === 'PUT' ? '{"files":' : '{"add":'
      const rest = `${JSON.stringify(files)}}`
      let finish = () => {}
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(head))
          finish = () => {
            controller.enqueue(new TextEncoder().encode(rest))
            controller.close()
          }
        },
      })
      const held = directory.request('/v1/index', {
        method,
        token: peer,
        // Stated, so the body limit decides without reading it and the slot is taken before it ends.
        headers: {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(head + rest)),
        },
        body,
        duplex: 'half',
      } as RequestInit & { token: string })
      const busy = await until429(() =>
        call(method, '/v1/index', { token: peer, json: method === 'PUT' ? { files } : { add: files } }),
      )
      expect(busy.body.error.code).toBe('index_write_in_progress')
      finish()
      expect((await held).status).toBe(200)
    }

    const found = await call('GET', '/v1/search?q=a.t')
    expect(found.body).toMatchObject({ results: [{ name: 'a.txt' }] })
    const hash = files[0]?.sha256
    expect((await call('GET', `/v1/search?sha256=${hash}`)).status).toBe(200)
    expect((await call('GET', '/v1/search')).status).toBe(400)
    expect((await call('GET', `/v1/search?q=a&sha256=${hash}`)).status).toBe(400)
    const cursor = (found.body as unknown as { cursor: string }).cursor
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/)
    expect((await call('GET', `/v1/search?q=a.t&since=${cursor}`)).body).toMatchObject({
      results: [],
      cursor,
    })
    expect((await call('GET', `/v1/search?sha256=${hash}&since=${cursor}`)).body).toMatchObject({
      results: [],
    })
    expect((await call('GET', '/v1/search?q=a&since=not-a-cursor')).status).toBe(400)
    expect((await call('GET', `/v1/files/${hash}`)).status).toBe(200)
    expect((await call('GET', '/v1/files/nothex')).status).toBe(400)
    expect((await call('GET', `/v1/files/${sha('never offered')}`)).status).toBe(404)
    expect((await call('GET', '/v1/peers?state=up')).body).toMatchObject({ total: 1 })
    expect((await call('GET', '/v1/peers?limit=0')).status).toBe(400)
    expect((await call('GET', '/v1/stats')).status).toBe(200)
    const level = await call('GET', '/v1/peers/alice/files')
    expect(level.body).toMatchObject({ username: 'alice', state: 'up', path: '', folders: [] })
    expect((await call('GET', '/v1/peers/alice/files?path=..')).status).toBe(400)
    expect((await call('GET', '/v1/peers/nobody/files')).body.error.code).toBe('unknown_peer')
    expect((await call('GET', '/v1/peers/alice/files?path=none')).body.error.code).toBe('unknown_folder')
    expect((await call('GET', '/healthz')).status).toBe(200)
    expect((await call('GET', '/.well-known/jwks.json')).status).toBe(200)
    expect((await call('GET', '/metrics')).status).toBe(200)
    expect((await call('GET', '/?q=a&sort=nonsense')).status).toBe(200)
  })

  it('a members-only directory: reads and metrics refused without credentials, registration closed', async () => {
    const call = caller(open({ READ_REQUIRES_AUTH: 'true' }))
    expect((await call('POST', '/v1/login', peerLogin('alice'))).body.error.code).toBe('registration_closed')
    for (const path of [
      '/v1/search?q=a',
      `/v1/files/${sha(1)}`,
      '/v1/peers',
      '/v1/peers/alice/files',
      '/v1/stats',
      '/metrics',
    ]) {
      expect((await call('GET', path)).status, path).toBe(401)
    }
    for (const [method, path] of [
      ['GET', '/v1/admin/users'],
      ['POST', '/v1/admin/users'],
      ['DELETE', '/v1/admin/users/bob'],
    ] as const) {
      expect((await call(method, path)).body.error.code, `${method} ${path}`).toBe('admin_disabled')
    }
  })

  it('the admin calls', async () => {
    const call = caller(open({ ADMIN_TOKEN }))
    const admin = { token: ADMIN_TOKEN }
    const user = { username: 'bob', password: 'bob password' }
    expect((await call('POST', '/v1/admin/users', { ...admin, json: user })).status).toBe(201)
    expect((await call('POST', '/v1/admin/users', { ...admin, json: user })).status).toBe(409)
    expect((await call('POST', '/v1/admin/users', { ...admin, json: { username: 'bob' } })).status).toBe(400)
    expect((await call('POST', '/v1/admin/users', { ...admin, ...asText })).status).toBe(415)
    expect((await call('POST', '/v1/admin/users', { ...admin, body: oversized })).status).toBe(413)
    expect(
      (await call('POST', '/v1/admin/users', { token: 'not the admin secret', json: user })).status,
    ).toBe(401)
    expect((await call('GET', '/v1/admin/users', admin)).body).toMatchObject({ total: 1 })
    expect((await call('GET', '/v1/admin/users?offset=-1', admin)).status).toBe(400)
    expect((await call('GET', '/v1/admin/users')).status).toBe(401)
    expect((await call('DELETE', '/v1/admin/users/bob', admin)).status).toBe(200)
    expect((await call('DELETE', '/v1/admin/users/bob', admin)).status).toBe(404)
    expect((await call('DELETE', '/v1/admin/users/no%20one', admin)).status).toBe(400)
    expect((await call('DELETE', '/v1/admin/users/bob')).status).toBe(401)
  })

  it('the presence socket: refusals from the app, the handshake from the Node entry', async () => {
    const directory = open()
    const call = caller(directory)
    const peer = (await call('POST', '/v1/login', peerLogin('sam'))).body.token
    const viewer = (await call('POST', '/v1/login', { json: { username: 'sam', password: 'correct horse' } }))
      .body.token
    const upgrade = { upgrade: 'websocket', connection: 'Upgrade' }
    expect((await call('GET', '/v1/presence', { headers: upgrade })).status).toBe(401)
    expect((await call('GET', '/v1/presence', { token: viewer, headers: upgrade })).status).toBe(403)
    expect((await call('GET', '/v1/presence', { token: peer })).status).toBe(426)
    // Leases in the database (this app, and Workers without Durable Objects): no socket, heartbeats.
    expect((await call('GET', '/v1/presence', { token: peer, headers: upgrade })).body.error.code).toBe(
      'presence_unavailable',
    )
    const dir = mkdtempSync(join(tmpdir(), 'peerdir-openapi-'))
    const node = await startNodeDirectory({
      host: '127.0.0.1',
      port: 0,
      databaseUrl: `file:${join(dir, 'directory.db')}`,
    })
    try {
      const login = await fetch(`${node.url}/v1/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(peerLogin('sam').json),
      })
      const { token } = (await login.json()) as { token: string }
      const socket = new WebSocket(`${node.url.replace('http', 'ws')}/v1/presence`, [
        'peerdir.v1',
        `bearer.${token}`,
      ])
      const status = await new Promise<number>((resolve, reject) => {
        socket.once('upgrade', (response) => resolve(response.statusCode ?? 0))
        socket.once('error', reject)
      })
      socket.terminate()
      answers.checkUpgrade('GET', '/v1/presence', status)
    } finally {
      await node.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('every operation with its storage unreachable', async () => {
    const directory = open()
    // The real client closed before the first request: the app cannot even read its migrations.
    directory.db.close()
    const call = caller(directory)
    const operations = [
      ['POST', '/v1/login'],
      ['POST', '/v1/logout'],
      ['GET', '/v1/session'],
      ['POST', '/v1/heartbeat'],
      ['POST', '/v1/call-tokens'],
      ['POST', '/v1/relay-tokens'],
      ['GET', '/v1/sessions/some-session'],
      ['PUT', '/v1/index'],
      ['PATCH', '/v1/index'],
      ['GET', '/v1/search?q=a'],
      ['GET', `/v1/files/${sha(1)}`],
      ['GET', '/v1/peers'],
      ['GET', '/v1/peers/alice/files'],
      ['GET', '/v1/presence'],
      ['GET', '/v1/stats'],
      ['GET', '/v1/admin/users'],
      ['POST', '/v1/admin/users'],
      ['DELETE', '/v1/admin/users/bob'],
      ['GET', '/healthz'],
      ['GET', '/.well-known/jwks.json'],
      ['GET', '/metrics'],
      ['GET', '/'],
    ] as const
    for (const [method, path] of operations) {
      expect((await call(method, path)).body.error.code, `${method} ${path}`).toBe('storage_unavailable')
    }
  })

  it('each answer the document lists was seen from the app', () => {
    expect(answers.unseen()).toEqual([])
  })
})
