import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  createTestDirectory,
  fileEntry,
  login,
  publish,
  type TestDirectory,
} from '../support/directory-app.ts'

let directory: TestDirectory
beforeEach(() => {
  directory = createTestDirectory()
})
afterEach(() => directory.close())

const loginRequest = (username: string, password: string, url: string) =>
  directory.request('/v1/login', { method: 'POST', json: { username, password, url } })

const indexOf = async (username: string) => {
  const rows = await directory.db.execute({
    sql: 'SELECT f.name FROM files f JOIN peers p ON p.id = f.peer_id WHERE p.username = ? ORDER BY f.name',
    args: [username],
  })
  return rows.rows.map((row) => String(row.name))
}

describe('concurrent requests end in a state some order of them would give', () => {
  it('two first logins of one new name with different passwords: exactly one account wins', async () => {
    for (let round = 0; round < 5; round++) {
      const name = `newcomer${round}`
      const [a, b] = await Promise.all([
        loginRequest(name, 'password-a', 'http://127.0.0.1:1001'),
        loginRequest(name, 'password-b', 'http://127.0.0.1:1002'),
      ])
      expect([a.status, b.status].sort()).toEqual([200, 401])
      const winner = a.status === 200 ? 'password-a' : 'password-b'
      expect((await loginRequest(name, winner, 'http://127.0.0.1:1003')).status).toBe(200)
    }
  })

  it('the same user logging in from two places: both sessions work, the URL is one of the two', async () => {
    await login(directory, 'alice')
    const [a, b] = await Promise.all([
      loginRequest('alice', 'correct horse', 'http://127.0.0.1:2001'),
      loginRequest('alice', 'correct horse', 'http://127.0.0.1:2002'),
    ])
    expect([a.status, b.status]).toEqual([200, 200])
    const peers = (await (await directory.request('/v1/peers')).json()).peers
    expect(['http://127.0.0.1:2001', 'http://127.0.0.1:2002']).toContain(peers[0].url)
    for (const response of [a, b]) {
      const { token } = await response.json()
      expect((await directory.request('/v1/heartbeat', { method: 'POST', token })).status).toBe(200)
    }
  })

  it('logout racing heartbeat: the peer ends down and the token revoked, whichever ran first', async () => {
    for (let round = 0; round < 10; round++) {
      const token = await login(directory, 'alice')
      const [beat, out] = await Promise.all([
        directory.request('/v1/heartbeat', { method: 'POST', token }),
        directory.request('/v1/logout', { method: 'POST', token }),
      ])
      expect(out.status).toBe(200)
      expect([200, 401]).toContain(beat.status)
      const peers = (await (await directory.request('/v1/peers')).json()).peers
      expect(peers[0].state).toBe('down')
      if (beat.status === 200) {
        const fresh = (await beat.json()).token
        expect((await directory.request('/v1/heartbeat', { method: 'POST', token: fresh })).status).toBe(401)
      }
    }
  })

  it('PUT racing PATCH on one index: the result is PUT alone, or PUT then PATCH, or PATCH then PUT', async () => {
    const token = await login(directory, 'alice')
    for (let round = 0; round < 10; round++) {
      await publish(directory, token, [fileEntry('base.txt'), fileEntry('old.txt')])
      const put = directory.request('/v1/index', {
        method: 'PUT',
        token,
        json: { files: [fileEntry('put-1.txt'), fileEntry('put-2.txt'), fileEntry('old.txt')] },
      })
      const patch = directory.request('/v1/index', {
        method: 'PATCH',
        token,
        json: { add: [fileEntry('patched.txt')], remove: [fileEntry('old.txt').sha256] },
      })
      const [putResponse, patchResponse] = await Promise.all([put, patch])
      // One index write per account at a time: the second may be refused (429), never mixed in.
      const statuses = [putResponse.status, patchResponse.status]
      expect([
        [200, 200],
        [200, 429],
        [429, 200],
      ]).toContainEqual(statuses)
      for (const refused of [putResponse, patchResponse].filter((r) => r.status === 429))
        expect((await refused.json()).error.code).toBe('index_write_in_progress')
      const names = await indexOf('alice')
      const putThenPatch = ['patched.txt', 'put-1.txt', 'put-2.txt']
      const patchThenPut = ['old.txt', 'put-1.txt', 'put-2.txt']
      const patchAlone = ['base.txt', 'patched.txt']
      const orders = {
        '200,200': [putThenPatch, patchThenPut],
        '200,429': [patchThenPut],
        '429,200': [patchAlone],
      }
      expect(orders[String(statuses) as keyof typeof orders]).toContainEqual(names)
      const peers = (await (await directory.request('/v1/peers')).json()).peers
      expect(peers[0].files).toBe(names.length)
    }
  })
})
