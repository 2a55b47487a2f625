import http2 from 'node:http2'
import net from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { pingUntilGone } from '../../peer/src/relay/link-liveness.ts'
import { closeServer, listen } from '../support/ports.ts'
import { startRelayInProcess } from '../support/relay-in-process.ts'

// No timer of the relay may throw into the event loop (a throw there ends the relay and every link it
// carries). The timers are driven by hand here (fake setInterval only; sockets stay real) against
// sessions that are over in each way a session can be: destroyed with its socket still half-open (its
// 'close' not come), closed gracefully, gone away by the peer.

const stops: (() => Promise<void> | void)[] = []
afterEach(async () => {
  vi.useRealTimers()
  for (const stop of stops.splice(0).reverse()) await stop()
})

/** A peer end that accepts the relay's connection and never ends its own side (half-open, as a vanished peer). */
async function halfOpenPeer() {
  const sockets: net.Socket[] = []
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {})
    socket.resume()
    sockets.push(socket)
  })
  const port = await listen(server)
  stops.push(() => closeServer(server, sockets))
  return port
}

/** An HTTP/2 peer that answers (so its sessions connect, ping and can go away). */
async function h2Peer() {
  const server = http2.createServer()
  const sessions: http2.ServerHttp2Session[] = []
  server.on('session', (session) => sessions.push(session))
  const port = await listen(server)
  stops.push(() => closeServer(server, sessions))
  return { port, sessions }
}

async function connected(port: number) {
  const session = http2.connect(`http://127.0.0.1:${port}`)
  session.on('error', () => {})
  stops.push(() => void session.destroy())
  await new Promise((resolve) => session.once('connect', resolve))
  return session
}

describe('the relay’s timers against sessions that are over', () => {
  it('a link’s ping timer, on a session destroyed while its socket stays half-open', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const session = await connected(await halfOpenPeer())
    pingUntilGone(session, 1000)
    session.destroy()
    expect(session.destroyed).toBe(true)
    expect(() => vi.advanceTimersByTime(10_000)).not.toThrow()
  })

  it('a link’s ping timer, on a session closed gracefully or gone away by its peer', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const peer = await h2Peer()
    const closed = await connected(peer.port)
    pingUntilGone(closed, 1000)
    closed.close()
    const goneAway = await connected(peer.port)
    pingUntilGone(goneAway, 1000)
    const gotGoaway = new Promise((resolve) => goneAway.once('goaway', resolve))
    peer.sessions[1]?.goaway()
    await gotGoaway
    expect(() => vi.advanceTimersByTime(10_000)).not.toThrow()
  })

  it('the relay, when a name registers again while its first link is half-open', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const relay = await startRelayInProcess()
    stops.push(() => relay.stop())
    const port = await halfOpenPeer()
    const first = await connected(port)
    relay.adopt({ username: 'lazarus', sessionId: 's1', token: 't', issuedAt: 1 }, first, 'a')
    relay.adopt({ username: 'lazarus', sessionId: 's2', token: 't', issuedAt: 2 }, await connected(port), 'a')
    // The first link is closed for the second (no calls in flight: destroyed once its GOAWAY is
    // written); its socket stays half-open, so its 'close' does not come.
    for (let i = 0; i < 1000 && !first.destroyed; i++) await new Promise((r) => setImmediate(r))
    expect(first.destroyed).toBe(true)
    expect(() => vi.advanceTimersByTime(60_000)).not.toThrow()
    expect(relay.peers.get('lazarus')?.sessionId).toBe('s2')
  })
})
