// Leases in the Node process's memory (MemoryLeases): a heartbeat of a live peer writes nothing,
// storage hears of transitions, and a restarted directory neither drops live peers nor keeps dead ones.
import type { InStatement } from '@libsql/client'
import { afterEach, describe, expect, it } from 'vitest'
import { createApp } from '../../directory-worker/src/app.ts'
import { MemoryLeases } from '../../directory-worker/src/services/memory-leases.ts'
import { parseSettings } from '../../directory-worker/src/settings.ts'
import {
  createTestDirectory,
  fileEntry,
  login,
  publish,
  type TestDirectory,
} from '../support/directory-app.ts'

const LEASE = 30
let directory: TestDirectory
/** Every statement that writes (anything but a read), as the app sent it. */
let writes: string[] = []
const recordWrites = async (statement: InStatement) => {
  const sql = (typeof statement === 'string' ? statement : statement.sql).trim()
  if (!/^(SELECT|PRAGMA|WITH)\b/i.test(sql)) writes.push(sql)
}
afterEach(() => {
  writes = []
  directory?.close()
})

const open = (env: Record<string, string> = {}) => {
  directory = createTestDirectory({ LEASE_SECONDS: String(LEASE), ...env }, recordWrites, {
    memoryLeases: true,
  })
  return directory
}
const beat = (token: string, app = directory) => app.request('/v1/heartbeat', { method: 'POST', token })
const states = async (app = directory) =>
  Object.fromEntries(
    ((await (await app.request('/v1/peers')).json()).peers as { username: string; state: string }[]).map(
      (peer) => [peer.username, peer.state],
    ),
  )
const sourcesOf = async (query: string) =>
  ((await (await directory.request(`/v1/search?q=${query}`)).json()).results as { sources: unknown[] }[])
    .flatMap((result) => result.sources)
    .map((source) => (source as { username: string }).username)
const storedLease = async (username: string) =>
  Number(
    (
      await directory.db.execute({
        sql: 'SELECT lease_expires_at FROM peers WHERE username = ?',
        args: [username],
      })
    ).rows[0]?.lease_expires_at,
  )
/** Moves the clock and lets the sweep run, as its timer would. */
const pass = async (seconds: number) => {
  directory.clock.advance(seconds)
  await directory.leases?.sweep()
}

describe('leases in memory', () => {
  it('heartbeats of a live peer write nothing, keep it up lease after lease, and move its listed lastSeen', async () => {
    open()
    const token = await login(directory, 'lee')
    writes = []
    for (let step = 0; step < 30; step++) {
      await pass(LEASE / 3)
      expect((await beat(token)).status).toBe(200)
      expect(await states()).toEqual({ lee: 'up' })
    }
    // Ten leases of heartbeats: not one write (the session is read again once a lease, from memory between).
    expect(writes).toEqual([])
    const listed = (await (await directory.request('/v1/peers')).json()).peers[0].lastSeen
    expect(Date.parse(listed)).toBe(directory.clock.now)
  })

  it('an hour-long lease (as long as the stored lease ahead) still leaves heartbeats unwritten but once a lease', async () => {
    const hour = 3600
    open({ LEASE_SECONDS: String(hour), TOKEN_TTL_SECONDS: String(2 * hour) })
    let token = await login(directory, 'slow')
    writes = []
    for (let step = 0; step < 30; step++) {
      directory.clock.advance(hour / 3)
      const answer = await beat(token)
      expect(answer.status).toBe(200)
      // The heartbeat's fresh token is used from then on, as the daemon does.
      token = ((await answer.json()) as { token?: string }).token ?? token
    }
    // Ten leases of heartbeats: the stored lease runs two leases ahead, so it is written again once a
    // lease, not at every heartbeat (an hour ahead, as for a short lease, wrote all 30).
    expect(writes.length).toBeGreaterThan(0)
    expect(writes.length).toBeLessThanOrEqual(10)
    expect(await storedLease('slow')).toBeGreaterThanOrEqual(directory.clock.now + hour * 1000)
  })

  it('a silent peer is written down when its lease ends, and search lists none of its files from then', async () => {
    open()
    const token = await login(directory, 'quiet')
    await publish(directory, token, [fileEntry('nightjar.flac')])
    const loggedIn = directory.clock.now
    await pass(LEASE - 1)
    expect(await sourcesOf('nightjar')).toEqual(['quiet'])
    // Sweeps a quarter of a second apart, as the timer's: the one after the lease's second finds it.
    while (directory.clock.now < loggedIn + (LEASE + 1) * 1000) await pass(0.25)
    expect(await states()).toEqual({ quiet: 'down' })
    expect(await sourcesOf('nightjar')).toEqual([])
    // The down transition as of the lease's end, not as of the sweep that found it.
    expect(await storedLease('quiet')).toBe(loggedIn + LEASE * 1000)
    // A heartbeat later brings it up again: one write, the transition.
    writes = []
    expect((await beat(token)).status).toBe(200)
    expect(await states()).toEqual({ quiet: 'up' })
    expect(writes.filter((sql) => sql.startsWith('UPDATE peers'))).toHaveLength(1)
    expect(await sourcesOf('nightjar')).toEqual(['quiet'])
  })

  it('a logout is down at once; its token and a viewer’s renew nothing', async () => {
    open()
    const token = await login(directory, 'leaver')
    const viewer = (
      await (
        await directory.request('/v1/login', {
          method: 'POST',
          json: { username: 'leaver', password: 'correct horse' },
        })
      ).json()
    ).token as string
    expect((await beat(viewer)).status).toBe(403)
    expect((await directory.request('/v1/logout', { method: 'POST', token })).status).toBe(200)
    expect(await states()).toEqual({ leaver: 'down' })
    expect((await beat(token)).status).toBe(401)
    expect(await states()).toEqual({ leaver: 'down' })
  })

  it('a logout in the same turn as its heartbeat leaves the peer down whichever lands first', async () => {
    open()
    // A live lease (the heartbeat writes nothing) and an ended one (it writes the peer up) both race the logout.
    for (const lapse of [LEASE / 3, LEASE + 1]) {
      const again = await login(directory, 'racer')
      await pass(lapse)
      const [heartbeat, logout] = await Promise.all([
        beat(again),
        directory.request('/v1/logout', { method: 'POST', token: again }),
      ])
      expect(logout.status).toBe(200)
      expect([200, 401]).toContain(heartbeat.status)
      expect(await states()).toEqual({ racer: 'down' })
      await pass(LEASE)
      expect(await states()).toEqual({ racer: 'down' })
    }
  })

  it('after a restart, a heartbeating peer never goes down and one that stopped before it is down one lease after it', async () => {
    open()
    const beating = await login(directory, 'beating')
    await login(directory, 'stopped')
    await pass(LEASE / 3)
    expect((await beat(beating)).status).toBe(200)
    // The process dies (its memory with it) and comes back 5 s later over the same database.
    directory.leases?.stop()
    directory.clock.advance(5)
    const restartedAt = directory.clock.now
    const settings = parseSettings({ LEASE_SECONDS: String(LEASE) })
    const now = () => directory.clock.now
    const leases = new MemoryLeases({ db: directory.db, now, settings, log: () => {} })
    const app = createApp({ db: directory.db, settings, now, log: () => {}, presence: leases })
    await leases.restore()
    const restarted = {
      ...directory,
      request: async (path: string, init: RequestInit & { token?: string } = {}) => {
        const headers = new Headers(init.headers)
        if (init.token) headers.set('authorization', `Bearer ${init.token}`)
        return app.request(path, { ...init, headers })
      },
    }
    expect(await states(restarted)).toEqual({ beating: 'up', stopped: 'up' })
    for (let step = 1; step <= 9; step++) {
      directory.clock.advance(LEASE / 3 - 1)
      await leases.sweep()
      expect((await beat(beating, restarted)).status).toBe(200)
      const at = directory.clock.now
      expect((await states(restarted)).beating).toBe('up')
      expect((await states(restarted)).stopped).toBe(at < restartedAt + LEASE * 1000 ? 'up' : 'down')
    }
    expect(await storedLease('stopped')).toBe(restartedAt + LEASE * 1000)
  })
})
