// GET /v1/presence on the Node entry: a peer is up while it holds the socket and answers pings, and
// down at once when it closes it.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { startNodeDirectory } from '../../directory-worker/src/entries/node.ts'

const LEASE = 3
const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const ADMIN = 'node-presence-admin-0123456789'

async function directory(lease = LEASE) {
  const dir = mkdtempSync(join(tmpdir(), 'peerdir-presence-'))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  const started = await startNodeDirectory(
    { host: '127.0.0.1', port: 0, databaseUrl: `file:${join(dir, 'directory.db')}` },
    { LEASE_SECONDS: String(lease), ADMIN_TOKEN: ADMIN },
  )
  cleanups.push(() => started.close())
  const login = async (username: string) => {
    const answer = await fetch(`${started.url}/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password: 'correct horse', url: 'http://127.0.0.1:50051' }),
    })
    return ((await answer.json()) as { token: string }).token
  }
  const state = async (username: string) => {
    const peers = (await (await fetch(`${started.url}/v1/peers`)).json()) as {
      peers: { username: string; state: string }[]
    }
    return peers.peers.find((peer) => peer.username === username)?.state
  }
  return { url: started.url.replace('http', 'ws'), http: started.url, login, state }
}

/** Opens the socket; resolves once open, or rejects with the status of a refused handshake. */
function hold(url: string, options: { protocols?: string[]; headers?: Record<string, string> }) {
  const socket = new WebSocket(`${url}/v1/presence`, options.protocols ?? [], { headers: options.headers })
  cleanups.push(() => socket.terminate())
  closes.set(socket, new Promise((resolve) => socket.once('close', (code) => resolve(code))))
  return new Promise<WebSocket>((resolve, reject) => {
    socket.once('open', () => resolve(socket))
    socket.once('unexpected-response', (_request, response) => reject(new Error(`${response.statusCode}`)))
    socket.once('error', reject)
  })
}

const closes = new Map<WebSocket, Promise<number>>()
const closed = (socket: WebSocket) => closes.get(socket) as Promise<number>

const pings = (socket: WebSocket, count: number) =>
  new Promise<void>((resolve) => {
    let seen = 0
    socket.on('ping', () => {
      if (++seen === count) resolve()
    })
  })

describe('the presence socket on Node', () => {
  it('keeps a peer up across leases while it answers pings, and takes it down at once when closed', async () => {
    const dir = await directory()
    const token = await dir.login('holder')
    const socket = await hold(dir.url, { protocols: ['peerdir.v1', `bearer.${token}`] })
    // The token never comes back as the chosen protocol.
    expect(socket.protocol).toBe('peerdir.v1')
    // Pings every third of the lease: four of them span more than a lease, with no heartbeat.
    await pings(socket, 4)
    expect(await dir.state('holder')).toBe('up')
    const closedAt = Date.now()
    socket.close()
    while ((await dir.state('holder')) !== 'down' && Date.now() - closedAt < 3000) {
      await new Promise((r) => setTimeout(r, 50))
    }
    expect(await dir.state('holder')).toBe('down')
  })

  it('takes the bearer in Authorization too, and refuses a missing or bad token and a plain GET', async () => {
    const dir = await directory()
    const token = await dir.login('header')
    const socket = await hold(dir.url, { headers: { authorization: `Bearer ${token}` } })
    expect(await dir.state('header')).toBe('up')
    await expect(hold(dir.url, {})).rejects.toThrow('401')
    await expect(hold(dir.url, { protocols: ['peerdir.v1', 'bearer.not-a-token'] })).rejects.toThrow('401')
    const plain = await fetch(`${dir.url.replace('ws', 'http')}/v1/presence`, {
      headers: { authorization: `Bearer ${token}` },
    })
    expect(plain.status).toBe(426)
    socket.terminate()
  })

  it('answers the client’s own ping, and one socket per peer: a second replaces the first', async () => {
    const dir = await directory()
    const token = await dir.login('twin')
    const first = await hold(dir.url, { protocols: ['peerdir.v1', `bearer.${token}`] })
    const answer = new Promise<string>((resolve) => first.once('message', (data) => resolve(String(data))))
    first.send('ping')
    expect(await answer).toBe('pong')
    const second = await hold(dir.url, { protocols: ['peerdir.v1', `bearer.${token}`] })
    expect(await closed(first)).toBe(4000)
    expect(await dir.state('twin')).toBe('up')
    second.close()
    await closed(second)
    while ((await dir.state('twin')) !== 'down') await new Promise((r) => setTimeout(r, 50))
  })

  it('closes the socket at logout and at once when the admin removes the account', async () => {
    // A ten-minute lease: no ping comes while the test waits, so each close is the directory's own doing.
    const dir = await directory(600)
    const token = await dir.login('leaver')
    const socket = await hold(dir.url, { headers: { authorization: `Bearer ${token}` } })
    const out = await fetch(`${dir.http}/v1/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    })
    expect((await out.json()).peer.state).toBe('down')
    expect(await closed(socket)).toBe(4001)
    const again = await dir.login('leaver')
    const held = await hold(dir.url, { headers: { authorization: `Bearer ${again}` } })
    const removed = await fetch(`${dir.http}/v1/admin/users/leaver`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${ADMIN}` },
    })
    expect(removed.status).toBe(200)
    expect(await closed(held)).toBe(4001)
  })
})
