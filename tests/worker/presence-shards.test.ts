// Presence on Workers (real workerd via wrangler dev: local D1 and local Durable Objects): leases live in
// the PresenceShard objects, so heartbeats and a held socket's pings write no D1 row; D1 hears of the
// transitions, and search reads it alone. One wrangler dev for the whole file.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ClientOptions, WebSocket } from 'ws'
import { shardOf } from '../../directory-worker/src/services/sharded-leases.ts'
import { fileEntry } from '../support/directory-app.ts'
import { until } from '../support/waiting.ts'
import { startWranglerDev, type WranglerDev } from '../support/wrangler-dev.ts'

const LEASE = 6
const ADMIN = 'presence-admin-token-0123456789'
let worker: WranglerDev
let state: string
const sockets: WebSocket[] = []

beforeAll(async () => {
  state = mkdtempSync(join(tmpdir(), 'peerdir-presence-do-'))
  worker = await startWranglerDev({ LEASE_SECONDS: String(LEASE), ADMIN_TOKEN: ADMIN }, state)
}, 120_000)
afterAll(async () => {
  for (const socket of sockets) socket.terminate()
  await worker?.stop()
  rmSync(state, { recursive: true, force: true })
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
const login = async (username: string) => {
  const answer = await call('/v1/login', {
    method: 'POST',
    json: { username, password: 'correct horse', url: 'http://127.0.0.1:50070' },
  })
  expect(answer.status).toBe(200)
  return ((await answer.json()) as { token: string }).token
}
const stateOf = async (username: string) =>
  ((await (await call('/v1/peers')).json()) as { peers: { username: string; state: string }[] }).peers.find(
    (peer) => peer.username === username,
  )?.state
/** D1 rows written so far by the isolate (its requests and its presence shards), from D1's meta.rows_written. */
const rowsWritten = async () =>
  Number(/^peerdir_d1_rows_written_total (\d+)$/m.exec(await (await call('/metrics')).text())?.[1])
/**
 * Whether the network totals, read through their cache (reconciled with the leases when computed),
 * were computed since the last account was made and count `up` peers up.
 */
const totalsCount = async (up: number) => {
  const stats = (await (await call('/v1/stats')).json()) as { peersUp: number; peersTotal: number }
  const listed = ((await (await call('/v1/peers')).json()) as { peers: unknown[] }).peers.length
  return stats.peersTotal === listed && stats.peersUp === up
}
const sourcesOf = async (query: string) =>
  (
    (await (await call(`/v1/search?q=${query}`)).json()) as { results: { sourceCount: number }[] }
  ).results.map((result) => result.sourceCount)
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Opens the presence socket with the token as subprotocol; resolves once open (or with the refusal's status). */
function hold(token: string) {
  // wrangler dev's proxy leaves the TCP connection open after the directory's close frame: once the
  // close handshake is done the client ends it itself, at once rather than after ws's 30 s.
  const socket = new WebSocket(
    `${worker.url.replace('http', 'ws')}/v1/presence`,
    ['peerdir.v1', `bearer.${token}`],
    { closeTimeout: 100 } as ClientOptions,
  )
  sockets.push(socket)
  const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)))
  return new Promise<{ socket: WebSocket; closed: Promise<number> }>((resolve, reject) => {
    socket.once('open', () => resolve({ socket, closed }))
    socket.once('unexpected-response', (_request, response) => reject(new Error(`${response.statusCode}`)))
    socket.once('error', reject)
  })
}
const ping = (socket: WebSocket) =>
  new Promise<string>((resolve) => {
    socket.once('message', (data) => resolve(String(data)))
    socket.send('ping')
  })

describe('presence on Workers (Durable Object shards, local D1)', () => {
  it('keeps a heartbeating peer up across leases with no D1 row written, and writes it down once silent, out of search at once', {
    timeout: 60_000,
  }, async () => {
    const token = await login('hana')
    expect(
      (await call('/v1/index', { method: 'PUT', token, json: { files: [fileEntry('kestrel.flac')] } }))
        .status,
    ).toBe(200)
    const before = await rowsWritten()
    // Two leases of heartbeats, each well inside a third of a lease of the last.
    for (let beat = 0; beat < 2 * LEASE; beat++) {
      expect((await call('/v1/heartbeat', { method: 'POST', token })).status).toBe(200)
      expect(await stateOf('hana')).toBe('up')
      await pause(1000)
    }
    expect(await rowsWritten()).toBe(before)
    expect(await sourcesOf('kestrel')).toEqual([1])
    // Silent from now: the shard's alarm writes it down when the lease ends, and search reads that row.
    await until(async () => (await stateOf('hana')) === 'down', 'the silent peer to be written down')
    expect(await sourcesOf('kestrel')).toEqual([])
    expect(await rowsWritten()).toBeGreaterThan(before)
  })

  it('keeps a peer up while its socket pings, with no D1 row written, and down at once when it closes', {
    timeout: 60_000,
  }, async () => {
    const token = await login('sora')
    const { socket, closed } = await hold(token)
    expect(socket.protocol).toBe('peerdir.v1')
    // The totals count sora's login at their next read, which writes; their read is cached for a
    // moment, so that write may come after the login. Counted before the pings start, it is not theirs.
    await until(() => totalsCount(1), 'the network totals to count sora up')
    const before = await rowsWritten()
    for (let i = 0; i < 2 * LEASE; i++) {
      expect(await ping(socket)).toBe('pong')
      await pause(1000)
    }
    expect(await stateOf('sora')).toBe('up')
    expect(await rowsWritten()).toBe(before)
    socket.close()
    await closed
    await until(
      async () => (await stateOf('sora')) === 'down',
      'the closed socket to take the peer down',
      3000,
    )
  })

  it('closes a socket silent for a lease and takes its peer down', { timeout: 60_000 }, async () => {
    const token = await login('mute')
    const { closed } = await hold(token)
    expect(await stateOf('mute')).toBe('up')
    // No pings: the alarm finds no auto-answered ping for a lease.
    expect(await closed).toBe(4001)
    await until(async () => (await stateOf('mute')) === 'down', 'the silent socket’s peer to be written down')
  })

  it('a second socket replaces the first; logout is instant and ends the socket', {
    timeout: 60_000,
  }, async () => {
    const token = await login('twin')
    const first = await hold(token)
    const second = await hold(token)
    expect(await first.closed).toBe(4000)
    expect(await stateOf('twin')).toBe('up')
    expect(await ping(second.socket)).toBe('pong')
    const out = await call('/v1/logout', { method: 'POST', token })
    expect(((await out.json()) as { peer: { state: string } }).peer.state).toBe('down')
    expect(await second.closed).toBe(4001)
    expect(await stateOf('twin')).toBe('down')
    // A heartbeating peer's logout too: down in the answer itself.
    const again = await login('twin')
    expect((await call('/v1/heartbeat', { method: 'POST', token: again })).status).toBe(200)
    const gone = await call('/v1/logout', { method: 'POST', token: again })
    expect(((await gone.json()) as { peer: { state: string } }).peer.state).toBe('down')
    expect((await call('/v1/heartbeat', { method: 'POST', token: again })).status).toBe(401)
  })

  it('closes the socket of an account the admin removes, at once', { timeout: 60_000 }, async () => {
    const token = await login('gone')
    const { closed } = await hold(token)
    const removed = await fetch(`${worker.url}/v1/admin/users/gone`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${ADMIN}` },
    })
    expect(removed.status).toBe(200)
    expect(await closed).toBe(4001)
    await expect(hold(token)).rejects.toThrow('401')
  })

  it('after the shard is lost (workerd killed), a heartbeating peer stays up and a silent one goes down a lease later', {
    timeout: 180_000,
  }, async () => {
    // Two peers of one shard: the live one's heartbeat wakes it, and its restore finds the other.
    const live = 'keeper'
    const dead = Array.from({ length: 10_000 }, (_, i) => `gone${i}`).find(
      (name) => shardOf(name) === shardOf(live),
    )
    if (!dead) throw new Error('no name shares the shard')
    let token = await login(live)
    await login(dead)
    await worker.kill()
    worker = await startWranglerDev({ LEASE_SECONDS: String(LEASE), ADMIN_TOKEN: ADMIN }, state)
    // The live peer beats on; the silent one was up when the shard went, and is given one lease of grace.
    const beat = async () => {
      const answer = await call('/v1/heartbeat', { method: 'POST', token })
      expect(answer.status).toBe(200)
      token = ((await answer.json()) as { token?: string }).token ?? token
    }
    await beat()
    expect(await stateOf(dead)).toBe('up')
    await until(
      async () => {
        expect(await stateOf(live)).toBe('up')
        await beat()
        return (await stateOf(dead)) === 'down'
      },
      'the silent peer written down after its grace',
      60_000,
    )
    expect(await stateOf(live)).toBe('up')
  })
})
