import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createTestDirectory, login, type TestDirectory } from '../support/directory-app.ts'

let directory: TestDirectory
beforeEach(() => {
  directory = createTestDirectory({ LEASE_SECONDS: '30', TOKEN_TTL_SECONDS: '120', LOGIN_MAX_FAILURES: '3' })
})
afterEach(() => directory.close())

const loginBody = (username: string, password = 'correct horse') => ({
  username,
  password,
  url: 'http://127.0.0.1:50051',
})

describe('login', () => {
  it('registers a username on first login and answers the SPEC shape', async () => {
    const response = await directory.request('/v1/login', { method: 'POST', json: loginBody('alice') })
    expect(response.status).toBe(200)
    const body = await response.json()
    expect(body).toMatchObject({
      leaseSeconds: 30,
      peer: { username: 'alice', url: 'http://127.0.0.1:50051', state: 'up', files: 0 },
    })
    expect(typeof body.token).toBe('string')
    expect(new Date(body.expiresAt).getTime()).toBeGreaterThan(directory.clock.now)
  })

  it('stores only a salted slow hash of the password', async () => {
    await login(directory, 'alice')
    await login(directory, 'bob')
    const rows = (await directory.db.execute('SELECT password_hash FROM peers ORDER BY username')).rows
    const [alice, bob] = rows.map((row) => String(row.password_hash))
    expect(alice).toMatch(/^pbkdf2-sha256\$100000\$/)
    expect(alice).not.toContain('correct horse')
    expect(alice).not.toBe(bob)
  })

  it('refuses a wrong password with 401 invalid_credentials', async () => {
    await login(directory, 'alice')
    const response = await directory.request('/v1/login', {
      method: 'POST',
      json: loginBody('alice', 'wrong password'),
    })
    expect(response.status).toBe(401)
    expect((await response.json()).error.code).toBe('invalid_credentials')
  })

  /** Three wrong passwords for `username` (401 each), then the right one: what the lock-out answers it. */
  async function rightAfterThreeWrong(username: string) {
    for (let i = 0; i < 3; i++) {
      const r = await directory.request('/v1/login', {
        method: 'POST',
        json: loginBody(username, 'wrong password'),
      })
      expect(r.status).toBe(401)
    }
    return directory.request('/v1/login', { method: 'POST', json: loginBody(username) })
  }

  it('answers 429 with Retry-After after repeated failures, even for the right password, then lets it in', async () => {
    await login(directory, 'alice')
    const locked = await rightAfterThreeWrong('alice')
    expect(locked.status).toBe(429)
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0)
    expect((await locked.json()).error.code).toBe('too_many_attempts')
    directory.clock.advance(Number(locked.headers.get('retry-after')) + 1)
    expect((await directory.request('/v1/login', { method: 'POST', json: loginBody('alice') })).status).toBe(
      200,
    )
  })

  it('doubles the lock-out with each further round of failures, up to an hour, and a success resets it', async () => {
    await login(directory, 'alice')
    const failRound = async () => {
      const locked = await rightAfterThreeWrong('alice')
      expect(locked.status).toBe(429)
      const seconds = Number(locked.headers.get('retry-after'))
      directory.clock.advance(seconds)
      return seconds
    }
    // LOGIN_LOCK_SECONDS is 60 by default: 60, 120, 240, ... until the one-hour cap.
    const locks: number[] = []
    for (let round = 0; round < 8; round++) locks.push(await failRound())
    expect(locks).toEqual([60, 120, 240, 480, 960, 1920, 3600, 3600])
    expect((await directory.request('/v1/login', { method: 'POST', json: loginBody('alice') })).status).toBe(
      200,
    )
    // Let in, the count starts over: the next lock-out is the first one again.
    expect(await failRound()).toBe(60)
  })

  it('treats usernames case-insensitively so nobody can register a look-alike', async () => {
    await login(directory, 'alice')
    const response = await directory.request('/v1/login', {
      method: 'POST',
      json: loginBody('ALICE', 'other password'),
    })
    expect(response.status).toBe(401)
  })
})

describe('tokens', () => {
  it('publishes the signing key as JWKS and signs EdDSA JWTs naming the user and session', async () => {
    const token = await login(directory, 'alice')
    const jwks = await (await directory.request('/.well-known/jwks.json')).json()
    expect(jwks.keys).toHaveLength(1)
    expect(jwks.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' })
    expect(jwks.keys[0].d).toBeUndefined()
    const [header, payload] = token
      .split('.')
      .slice(0, 2)
      .map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()))
    expect(header).toMatchObject({ alg: 'EdDSA', kid: jwks.keys[0].kid })
    expect(payload).toMatchObject({ sub: 'alice', iss: 'peerdir-directory' })
    expect(typeof payload.sid).toBe('string')
  })

  it('logout puts the peer down and revokes the token at once', async () => {
    const token = await login(directory, 'alice')
    const out = await directory.request('/v1/logout', { method: 'POST', token })
    expect(out.status).toBe(200)
    expect((await out.json()).peer.state).toBe('down')
    for (const [path, method] of [
      ['/v1/heartbeat', 'POST'],
      ['/v1/logout', 'POST'],
    ] as const) {
      const response = await directory.request(path, { method, token })
      expect(response.status).toBe(401)
      expect((await response.json()).error.code).toBe('session_revoked')
    }
    const index = await directory.request('/v1/index', { method: 'PUT', token, json: { files: [] } })
    expect(index.status).toBe(401)
  })

  it('heartbeat renews the lease, and hands a fresh token that works once the old one is half used', async () => {
    const token = await login(directory, 'alice')
    directory.clock.advance(20)
    const beat = await directory.request('/v1/heartbeat', { method: 'POST', token })
    expect(beat.status).toBe(200)
    expect(await beat.json()).not.toHaveProperty('token')
    directory.clock.advance(20)
    // 40 s after login, 20 s after the beat: still up only because the beat renewed the lease.
    const peers = await (await directory.request('/v1/peers')).json()
    expect(peers.peers[0].state).toBe('up')
    directory.clock.advance(20)
    const renewed = await directory.request('/v1/heartbeat', { method: 'POST', token })
    const grant = await renewed.json()
    expect(grant.leaseSeconds).toBe(30)
    expect(grant.token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/)
    expect(grant.token).not.toBe(token)
    expect((await directory.request('/v1/heartbeat', { method: 'POST', token: grant.token })).status).toBe(
      200,
    )
  })

  it('refuses an expired token', async () => {
    const token = await login(directory, 'alice')
    directory.clock.advance(121)
    const response = await directory.request('/v1/heartbeat', { method: 'POST', token })
    expect(response.status).toBe(401)
    expect((await response.json()).error.code).toBe('invalid_token')
  })

  it("refuses a token signed by another directory's key, and a missing or garbled one", async () => {
    await login(directory, 'alice')
    const jwks = await (await directory.request('/.well-known/jwks.json')).json()
    const other = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })
    await exportJWK(other.publicKey)
    const forged = await new SignJWT({ sid: 'whatever' })
      .setProtectedHeader({ alg: 'EdDSA', kid: jwks.keys[0].kid })
      .setIssuer('peerdir-directory')
      .setSubject('alice')
      .setExpirationTime('10m')
      .sign(other.privateKey)
    for (const token of [forged, 'not-a-jwt', `${forged}x`]) {
      const response = await directory.request('/v1/heartbeat', { method: 'POST', token })
      expect(response.status).toBe(401)
      expect((await response.json()).error.code).toBe('invalid_token')
    }
    const missing = await directory.request('/v1/heartbeat', { method: 'POST' })
    expect(missing.status).toBe(401)
    expect(missing.headers.get('www-authenticate')).toContain('Bearer')
    expect((await missing.json()).error.code).toBe('missing_token')
  })

  it("one user's token only ever acts on that user's own index", async () => {
    const alice = await login(directory, 'alice')
    await login(directory, 'bob')
    await directory.request('/v1/index', {
      method: 'PUT',
      token: alice,
      json: {
        files: [
          { name: 'a.txt', size: 1, sha256: 'a'.repeat(64), chunkSize: 1024, manifest: 'b'.repeat(64) },
        ],
      },
    })
    const peers = (await (await directory.request('/v1/peers')).json()).peers
    expect(peers.find((p: { username: string }) => p.username === 'alice').files).toBe(1)
    expect(peers.find((p: { username: string }) => p.username === 'bob').files).toBe(0)
  })

  it('keeps the key pair in the database: a second app over the same file verifies old tokens', async () => {
    const token = await login(directory, 'alice')
    const keys = await directory.db.execute('SELECT count(*) AS n FROM signing_keys')
    expect(Number(keys.rows[0]?.n)).toBe(1)
    const { createApp } = await import('../../directory-worker/src/app.ts')
    const { parseSettings } = await import('../../directory-worker/src/settings.ts')
    const again = createApp({ db: directory.db, settings: parseSettings({}), now: Date.now, log: () => {} })
    const response = await again.request('/v1/heartbeat', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    })
    expect(response.status).toBe(200)
  })
})

describe('GET /v1/session', () => {
  it('says whether a token’s session is open, so peers can refuse revoked callers', async () => {
    const token = await login(directory, 'alice')
    const open = await directory.request('/v1/session', { token })
    expect(await open.json()).toEqual({ username: 'alice', open: true })
    await directory.request('/v1/logout', { method: 'POST', token })
    const closed = await directory.request('/v1/session', { token })
    expect(closed.status).toBe(401)
    expect((await closed.json()).error.code).toBe('session_revoked')
  })
})

describe('viewer sessions', () => {
  it('a login without url reads as the user but neither brings the peer up nor changes its URL', async () => {
    await login(directory, 'alice', { url: 'http://127.0.0.1:50051' })
    await directory.request('/v1/logout', { method: 'POST', token: await login(directory, 'alice') })
    const viewer = await directory.request('/v1/login', {
      method: 'POST',
      json: { username: 'alice', password: 'correct horse' },
    })
    expect(viewer.status).toBe(200)
    const body = await viewer.json()
    expect(body.peer).toMatchObject({ state: 'down', url: 'http://127.0.0.1:50051' })
    expect((await directory.request('/v1/session', { token: body.token })).status).toBe(200)
  })
})

describe('viewer sessions cannot act for the peer', () => {
  it('refuses heartbeat and index writes, logs out without taking the peer down, and registers nobody', async () => {
    const peerToken = await login(directory, 'alice', { url: 'http://127.0.0.1:50051' })
    const viewer = await (
      await directory.request('/v1/login', {
        method: 'POST',
        json: { username: 'alice', password: 'correct horse' },
      })
    ).json()
    for (const [path, method, json] of [
      ['/v1/heartbeat', 'POST', undefined],
      ['/v1/index', 'PUT', { files: [] }],
      ['/v1/index', 'PATCH', { add: [] }],
    ] as const) {
      const response = await directory.request(path, { method, token: viewer.token, json })
      expect(response.status, path).toBe(403)
      expect((await response.json()).error.code).toBe('viewer_session')
    }
    expect((await directory.request('/v1/logout', { method: 'POST', token: viewer.token })).status).toBe(200)
    const peers = (await (await directory.request('/v1/peers')).json()).peers
    expect(peers[0].state).toBe('up')
    expect((await directory.request('/v1/heartbeat', { method: 'POST', token: peerToken })).status).toBe(200)
    const stranger = await directory.request('/v1/login', {
      method: 'POST',
      json: { username: 'nobody', password: 'correct horse' },
    })
    expect(stranger.status).toBe(401)
  })
})
