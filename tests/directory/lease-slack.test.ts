import { afterEach, describe, expect, it } from 'vitest'
import { createTestDirectory, login, type TestDirectory } from '../support/directory-app.ts'

// LEASE_SLACK_SECONDS: heartbeats store a longer lease so that most of them write nothing (on D1 each
// written row is billed), while every heartbeat still leaves the peer up for LEASE_SECONDS at least.
let directory: TestDirectory
afterEach(() => directory?.close())

const stored = async () => {
  const row = (
    await directory.db.execute("SELECT lease_expires_at, last_seen FROM peers WHERE username = 'lee'")
  ).rows[0]
  return { lease: Number(row?.lease_expires_at), lastSeen: Number(row?.last_seen) }
}
const state = async () =>
  ((await (await directory.request('/v1/peers')).json()) as { peers: { state: string }[] }).peers[0]?.state

describe('heartbeats with LEASE_SLACK_SECONDS', () => {
  it('write once per slack, and each one keeps the peer up for the whole lease after it', async () => {
    directory = createTestDirectory({ LEASE_SECONDS: '60', LEASE_SLACK_SECONDS: '60' })
    const token = await login(directory, 'lee')
    const start = directory.clock.now
    const writes: number[] = []
    let last = await stored()
    for (let beat = 1; beat <= 12; beat++) {
      directory.clock.advance(20)
      expect((await directory.request('/v1/heartbeat', { method: 'POST', token })).status).toBe(200)
      const now = await stored()
      if (now.lastSeen !== last.lastSeen) writes.push((now.lastSeen - start) / 1000)
      expect(now.lease).toBeGreaterThanOrEqual(directory.clock.now + 60_000)
      expect(now.lease).toBeLessThanOrEqual(directory.clock.now + 120_000)
      last = now
    }
    // 12 heartbeats over four minutes, 3 writes (one every 80 s: a lease of 60 + 60 s, renewed when
    // less than 60 s of it are left).
    expect(writes).toEqual([20, 100, 180])
    directory.clock.advance(59)
    expect(await state()).toBe('up')
    const lastWrite = start + writes[2] * 1000
    directory.clock.now = lastWrite + 120_000
    expect(await state()).toBe('down')
  })

  it('without it, every heartbeat writes', async () => {
    directory = createTestDirectory({ LEASE_SECONDS: '60' })
    const token = await login(directory, 'lee')
    for (let beat = 1; beat <= 3; beat++) {
      directory.clock.advance(20)
      await directory.request('/v1/heartbeat', { method: 'POST', token })
      expect(await stored()).toEqual({ lease: directory.clock.now + 60_000, lastSeen: directory.clock.now })
    }
  })
})
