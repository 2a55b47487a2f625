// Heartbeats that arrive together share one renewal statement; each still gets its own answer.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createTestDirectory, login, type TestDirectory } from '../support/directory-app.ts'

let directory: TestDirectory
/** The SQL of every statement the app sent, in order. */
let sent: string[] = []
beforeEach(() => {
  sent = []
  directory = createTestDirectory({ LEASE_SECONDS: '30' }, async (statement) => {
    sent.push(typeof statement === 'string' ? statement : statement.sql)
  })
})
const leaseWrites = () => sent.filter((sql) => /^\s*UPDATE peers SET lease_expires_at/.test(sql)).length
afterEach(() => directory.close())

const beat = (token: string) => directory.request('/v1/heartbeat', { method: 'POST', token })
const peerStates = async () =>
  Object.fromEntries(
    (
      (await (await directory.request('/v1/peers')).json()).peers as { username: string; state: string }[]
    ).map((peer) => [peer.username, peer.state]),
  )

describe('heartbeats arriving together', () => {
  it('renew each open peer session and refuse, each with its own reason, the revoked and the viewer ones', async () => {
    const live = await Promise.all(
      ['a', 'b', 'c'].map((name, i) => login(directory, name, { url: `http://127.0.0.1:${50051 + i}` })),
    )
    const revoked = await login(directory, 'd', { url: 'http://127.0.0.1:50060' })
    await directory.request('/v1/logout', { method: 'POST', token: revoked })
    const viewer = (
      await (
        await directory.request('/v1/login', {
          method: 'POST',
          json: { username: 'a', password: 'correct horse' },
        })
      ).json()
    ).token as string
    directory.clock.advance(31)
    expect(await peerStates()).toEqual({ a: 'down', b: 'down', c: 'down', d: 'down' })

    const writesBefore = leaseWrites()
    const answers = await Promise.all([...live, live[0] as string, revoked, viewer].map(beat))
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 401, 403])
    // Six heartbeats in one turn: one renewal statement, in one batch (one commit), for all of them.
    expect(leaseWrites() - writesBefore).toBe(1)
    const [revokedBody, viewerBody] = await Promise.all(answers.slice(4).map((answer) => answer.json()))
    expect(revokedBody.error.code).toBe('session_revoked')
    expect(viewerBody.error.code).toBe('viewer_session')
    const grants = await Promise.all(answers.slice(0, 4).map((answer) => answer.json()))
    // 31 s into a 900 s token: far from half its lifetime, so no token is signed.
    for (const grant of grants) {
      expect(grant).toEqual({ expiresAt: expect.any(String), leaseSeconds: 30 })
    }
    expect(await peerStates()).toEqual({ a: 'up', b: 'up', c: 'up', d: 'down' })
  })

  it('a logout in the same turn as its heartbeat leaves the peer down whichever lands first', async () => {
    const token = await login(directory, 'alice')
    const [heartbeat, logout] = await Promise.all([
      beat(token),
      directory.request('/v1/logout', { method: 'POST', token }),
    ])
    expect(logout.status).toBe(200)
    expect([200, 401]).toContain(heartbeat.status)
    expect(await peerStates()).toEqual({ alice: 'down' })
    expect((await beat(token)).status).toBe(401)
  })

  it('hand a fresh token only to callers whose token has used half its lifetime, and say when the current one expires', async () => {
    const tokens = createTestDirectory({ LEASE_SECONDS: '30', TOKEN_TTL_SECONDS: '120' })
    try {
      const grantOf = async (name: string) =>
        (
          await tokens.request('/v1/login', {
            method: 'POST',
            json: { username: name, password: 'correct horse', url: 'http://127.0.0.1:50051' },
          })
        ).json() as Promise<{ token: string; expiresAt: string }>
      const old = await grantOf('old')
      tokens.clock.advance(60)
      const young = await grantOf('young')
      const answers = await Promise.all(
        [old.token, young.token].map((token) => tokens.request('/v1/heartbeat', { method: 'POST', token })),
      )
      expect(answers.map((answer) => answer.status)).toEqual([200, 200])
      const [forOld, forYoung] = await Promise.all(answers.map((answer) => answer.json()))
      // 60 s into a 120 s token: half used, so a fresh one, good for the whole lifetime from now.
      expect(forOld.token).toEqual(expect.any(String))
      expect(forOld.token).not.toBe(old.token)
      expect(Date.parse(forOld.expiresAt)).toBe(Math.floor(tokens.clock.now / 1000) * 1000 + 120_000)
      expect(forYoung).toEqual({ expiresAt: young.expiresAt, leaseSeconds: 30 })
      // The old token keeps its lifetime: it works until it expires, and the fresh one after it.
      tokens.clock.advance(59)
      expect((await tokens.request('/v1/heartbeat', { method: 'POST', token: old.token })).status).toBe(200)
      tokens.clock.advance(1)
      expect((await tokens.request('/v1/heartbeat', { method: 'POST', token: old.token })).status).toBe(401)
      expect((await tokens.request('/v1/heartbeat', { method: 'POST', token: forOld.token })).status).toBe(
        200,
      )
    } finally {
      tokens.close()
    }
  })
})
