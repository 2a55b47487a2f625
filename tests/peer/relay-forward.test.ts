import http2 from 'node:http2'
import type net from 'node:net'
import tls from 'node:tls'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Relay, RelayOptions } from '../../peer/src/relay/relay-server.ts'
import { clientHelloServerName, tunnelServerName } from '../../peer/src/wire/tls-server-name.ts'
import { listen } from '../support/ports.ts'
import { startRelayInProcess } from '../support/relay-in-process.ts'
import { rawTunnel } from '../support/relay-tunnels.ts'

// The relay's tunnels, in process, against a stub of a relayed peer (an HTTP/2 server the relay holds a
// client session to, as it does on a registered link, taking each tunnel's CONNECT stream): what a
// misbehaving peer or an odd caller can do to the relay. No directory is needed: tunnels carry no token.

const stops: (() => Promise<void> | void)[] = []
afterEach(async () => {
  vi.useRealTimers()
  for (const stop of stops.splice(0).reverse()) await stop()
})

async function relayWithStub(
  handle: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void,
  limits: Partial<RelayOptions> = {},
) {
  const stub = http2.createServer()
  const stubSessions: http2.ServerHttp2Session[] = []
  stub.on('session', (session) => stubSessions.push(session))
  stub.on('stream', (stream, headers) => {
    stream.on('error', () => {}) // a stub that resets its own stream sees the reset as an error
    handle(stream, headers)
  })
  const stubPort = await listen(stub)
  stops.push(() => new Promise<void>((resolve) => stub.close(() => resolve())))
  const relay = await startRelayInProcess({ maxPeers: 4, maxStreamsPerPeer: 8, ...limits })
  stops.push(() => relay.stop())
  lastRelay = relay
  const link = http2.connect(`http://127.0.0.1:${stubPort}`)
  await new Promise((resolve) => link.once('connect', resolve))
  relay.adopt({ username: 'stub', sessionId: 'sid', token: 'unused', issuedAt: 0 }, link, 'stub')
  return { relay, stubSessions }
}

let lastRelay: Relay | undefined
/** The relay the last relayWithStub started. */
const relayOf = async () => lastRelay as Relay

/** The peer's end taking a tunnel, as a daemon does: 200 and what its port speaks. */
const take = (stream: http2.ServerHttp2Stream) =>
  stream.respond({ ':status': 200, 'peerdir-inner': 'plaintext' })

/** A tunnel the peer takes and then holds: a few bytes, and nothing more. */
const holds = (stream: http2.ServerHttp2Stream) => {
  stream.on('data', () => {})
  take(stream)
  stream.write(Buffer.alloc(100))
}

/** A tunnel to the stub from `address` (any of 127/8 on loopback: the relay tells callers apart by address). */
async function tunnelFrom(relay: Relay, address = '127.0.0.1', headers?: string) {
  const tunnel = await rawTunnel(relay.port, 'stub', { localAddress: address, headers })
  const socket = tunnel.socket as net.Socket | undefined
  socket?.on('error', () => {})
  // Read (what a held tunnel's peer sends is a few bytes), so that its end is seen.
  socket?.resume()
  if (socket) stops.push(() => void socket.destroy())
  const closed = socket ? new Promise((resolve) => socket.once('close', resolve)) : Promise.resolve()
  return { ...tunnel, closed }
}

/** The status line's code of an answer. */
const statusOf = (answer: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1])

describe('the relay carrying tunnels to a relayed peer', () => {
  it('survives a peer that resets a tunnel after reading from it, and carries the next', async () => {
    let tunnels = 0
    await relayWithStub((stream) => {
      tunnels++
      take(stream)
      if (tunnels === 1) {
        stream.once('data', () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR))
        return
      }
      stream.on('data', (part: Buffer) => stream.write(Buffer.concat([Buffer.from('echo:'), part])))
    })
    const relay = await relayOf()
    const reset = await tunnelFrom(relay)
    expect(reset.answer).toMatch(/^HTTP\/1\.1 101[\s\S]*peerdir-inner: plaintext/)
    reset.socket?.write('hello')
    await reset.closed // the caller sees its connection end, as it would the peer's own
    const next = await tunnelFrom(relay)
    next.socket?.write('again')
    const echoed = await new Promise<string>((resolve) =>
      next.socket?.once('data', (d) => resolve(String(d))),
    )
    expect(echoed).toBe('echo:again')
  })

  it('carries a ClientHello naming a tunnel to the peer unread, and refuses with a TLS alert otherwise', async () => {
    const carried: Buffer[] = []
    let inner = 'tls'
    await relayWithStub((stream) => {
      stream.on('data', (part: Buffer) => carried.push(part))
      stream.respond({ ':status': 200, 'peerdir-inner': inner })
    })
    const relay = await relayOf()
    /** A TLS connect to the relay's port asking for `servername`: the error it ended with. */
    const hello = (servername: string) =>
      new Promise<{ error?: string }>((resolve) => {
        const socket = tls.connect({
          host: '127.0.0.1',
          port: relay.port,
          servername,
          rejectUnauthorized: false,
        })
        stops.push(() => void socket.destroy())
        socket.once('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }))
        socket.once('close', () => resolve({}))
      })
    // The peer gets the caller's ClientHello as sent, from its first byte: no answer of the relay's own.
    void hello(tunnelServerName('stub'))
    await until(() => Buffer.concat(carried).length >= 5)
    const first = Buffer.concat(carried)
    expect(first[0]).toBe(0x16)
    expect(clientHelloServerName(first)).toBe('stub.tunnel.peerdir.invalid')
    // Not carried here: a TLS alert the caller's TLS reports by name.
    expect((await hello(tunnelServerName('nobody'))).error).toBe('ERR_SSL_TLSV1_UNRECOGNIZED_NAME')
    inner = 'plaintext' // a peer that serves no TLS: a caller that opened with TLS gets nothing else
    expect((await hello(tunnelServerName('stub'))).error).toBe('ERR_SSL_TLSV1_ALERT_INTERNAL_ERROR')
    // A ClientHello for another name, on a relay serving no TLS of its own: closed, never carried.
    const before = carried.length
    expect((await hello('example.com')).error).toBeDefined()
    expect(carried.length).toBe(before)
  })

  it('refuses a tunnel the peer does not take, or to a name not registered, with one line; answers calls with unimplemented', async () => {
    await relayWithStub((stream) => stream.respond({ ':status': 503 }, { endStream: true }))
    const relay = await relayOf()
    const refused = await tunnelFrom(relay)
    expect(refused.socket).toBeUndefined()
    expect(statusOf(refused.answer)).toBe(502)
    expect(refused.answer).toMatch(/stub did not take the tunnel/)
    const nobody = await rawTunnel(relay.port, 'nobody')
    expect(statusOf(nobody.answer)).toBe(404)
    expect(nobody.answer).toMatch(/nobody is not connected to this relay/)
    // A call sent to the relay itself is not forwarded (the relay reads no call): a gRPC refusal,
    // trailers-only so gRPC clients read its status.
    const caller = http2.connect(`http://127.0.0.1:${relay.port}`)
    caller.on('error', () => {})
    stops.push(() => void caller.destroy())
    const answer = await new Promise<{ headers: http2.IncomingHttpHeaders; ended: boolean }>((resolve) => {
      const stream = caller.request({
        ':method': 'POST',
        ':path': '/relayed/stub/peerdir.v1.PeerService/GetInfo',
        'content-type': 'application/grpc',
        te: 'trailers',
      })
      stream.on('error', () => {})
      stream.once('response', (headers, flags) =>
        resolve({ headers, ended: (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0 }),
      )
      stream.end(Buffer.from([0, 0, 0, 0, 0]))
    })
    expect(answer.ended).toBe(true)
    expect(answer.headers['grpc-status']).toBe('12')
    expect(decodeURIComponent(String(answer.headers['grpc-message']))).toMatch(/forwards no calls/)
  })

  it('passes no caller header on: the peer sees a CONNECT with only its authority, then the bytes as sent', async () => {
    let seen: http2.IncomingHttpHeaders = {}
    const received: Buffer[] = []
    await relayWithStub((stream, headers) => {
      seen = headers
      take(stream)
      stream.on('data', (part: Buffer) => received.push(part))
    })
    const relay = await relayOf()
    const tunnel = await tunnelFrom(relay, '127.0.0.1', 'authorization: Bearer secret\r\ncookie: c=1\r\n')
    const bytes = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nanything at all')
    tunnel.socket?.end(bytes)
    await until(() => Buffer.concat(received).length >= bytes.length)
    expect(Buffer.concat(received).equals(bytes)).toBe(true)
    expect(Object.keys(seen).sort()).toEqual([':authority', ':method'])
    expect(seen[':method']).toBe('CONNECT')
    expect(seen[':authority']).toBe('stub.relayed:443')
  })

  it('paces the bytes through one peer, both ways together, at --max-peer-rate', async () => {
    const rate = 512 * 1024
    const half = 512 * 1024
    let uploaded = 0
    await relayWithStub(
      (stream) => {
        take(stream)
        stream.on('data', (part: Buffer) => {
          uploaded += part.length
        })
        stream.write(Buffer.alloc(half))
      },
      { peerRate: rate },
    )
    const relay = await relayOf()
    const started = performance.now()
    const tunnel = await tunnelFrom(relay)
    const socket = tunnel.socket as net.Socket
    let downloaded = 0
    socket.on('data', (part: Buffer) => {
      downloaded += part.length
    })
    socket.write(Buffer.alloc(half))
    await until(() => uploaded >= half && downloaded >= half)
    const seconds = (performance.now() - started) / 1000
    expect([uploaded, downloaded]).toEqual([half, half])
    // A lower bound only, which no load can break: the bucket's burst (a quarter second) and a frame
    // or four granted at its edge, then the rate. Unpaced, both halves cross in milliseconds.
    const unpaced = rate / 4 + 64 * 1024
    expect(seconds).toBeGreaterThanOrEqual((uploaded + downloaded - unpaced) / rate)
  })

  it('cuts a tunnel moving less than the minimum rate over a period, and one moving nothing', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    await relayWithStub(holds, { minCallRate: 8 * 1024 })
    const tunnel = await tunnelFrom(await relayOf())
    tunnel.socket?.resume()
    // 100 bytes in a period of 20 s, where 160 KiB are due: cut at the period's end, not a minute on.
    vi.advanceTimersByTime(20_000)
    await tunnel.closed
    expect(tunnel.socket?.destroyed).toBe(true)
  })

  it('lets a caller in when a peer’s tunnels are all taken: the slowest tunnel of a heavier caller gives way', async () => {
    await relayWithStub(holds)
    const relay = await relayOf()
    // Eight tunnels at most, two (a quarter) per caller address: four addresses fill them.
    const tunnels = []
    for (const address of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']) {
      for (let i = 0; i < 2; i++) tunnels.push(await tunnelFrom(relay, address))
    }
    expect(tunnels.map((t) => statusOf(t.answer))).toEqual(Array(8).fill(101))
    const late = await tunnelFrom(relay, '127.0.0.6')
    expect(statusOf(late.answer)).toBe(101)
    await Promise.race(tunnels.map((t) => t.closed))
    // Its second tunnel likewise (others still hold two); a third passes its own share, and is refused.
    expect(statusOf((await tunnelFrom(relay, '127.0.0.6')).answer)).toBe(101)
    const third = await tunnelFrom(relay, '127.0.0.6')
    expect(statusOf(third.answer)).toBe(429)
    expect(third.answer).toMatch(/you already have 2 tunnels/)
  })

  it('lets a caller have more tunnels when a full peer’s others only sit on theirs (nothing moved for 5 s)', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    await relayWithStub(holds)
    const relay = await relayOf()
    // Eight callers, one tunnel each: nobody holds more than another.
    for (let i = 0; i < 8; i++) await tunnelFrom(relay, `127.0.0.${30 + i}`)
    expect(statusOf((await tunnelFrom(relay, '127.0.0.50')).answer)).toBe(101) // took one of the eight
    const second = await tunnelFrom(relay, '127.0.0.50')
    expect(statusOf(second.answer)).toBe(429) // every other caller holds one, and they just began
    vi.setSystemTime(Date.now() + 6000)
    expect(statusOf((await tunnelFrom(relay, '127.0.0.50')).answer)).toBe(101) // an idle one gives way
  })

  it('shrinks the link’s stream window as tunnels grow, and caps the tunnels under --max-buffer', async () => {
    const { stubSessions } = await relayWithStub(holds, {
      maxBufferBytes: 1024 * 1024,
      maxStreamsPerPeer: 64,
    })
    const relay = await relayOf()
    const link = stubSessions[0] as http2.ServerHttp2Session
    const shrunk = new Promise<void>((resolve) => {
      const check = () => {
        if ((link.remoteSettings.initialWindowSize ?? 65_535) <= 32 * 1024) resolve()
      }
      link.on('remoteSettings', check)
      check()
    })
    // 1 MiB for tunnels that may hold two windows each: at most 16 tunnels of 32 KiB windows.
    for (let a = 0; a < 4; a++) {
      for (let i = 0; i < 4; i++)
        expect(statusOf((await tunnelFrom(relay, `127.0.0.${10 + a}`)).answer)).toBe(101)
    }
    await shrunk
    const refused = await tunnelFrom(relay, '127.0.0.20')
    expect(statusOf(refused.answer)).toBe(503)
    expect(refused.answer).toMatch(/most tunnels \(16\)/)
  })

  it('keeps a tunnel on a replaced link going while the windows change: the closing link is told nothing, so never cut for not acknowledging', async () => {
    // The peer echoes what comes through a tunnel, so the test can see one still carries bytes.
    const echoes = (stream: http2.ServerHttp2Stream) => {
      take(stream)
      stream.pipe(stream)
    }
    const { stubSessions } = await relayWithStub(echoes, { maxBufferBytes: 1024 * 1024 })
    const relay = await relayOf()
    const first = await tunnelFrom(relay, '127.0.0.2')
    const old = stubSessions[0] as http2.ServerHttp2Session
    const heard = (tunnel: { socket?: net.Socket }, text: string) =>
      new Promise<boolean>((resolve) => {
        let got = ''
        tunnel.socket?.on('data', (chunk: Buffer) => {
          got += chunk.toString('latin1')
          if (got.includes(text)) resolve(true)
        })
        tunnel.socket?.once('close', () => resolve(false))
        tunnel.socket?.write(text)
      })
    expect(await heard(first, 'before')).toBe(true)
    // The peer registers again: a new link takes over, the old one closes once its tunnel ends.
    const stubPort = (old.socket as net.Socket).localPort
    const link = http2.connect(`http://127.0.0.1:${stubPort}`)
    await new Promise((resolve) => link.once('connect', resolve))
    stops.push(() => {
      for (const session of [...stubSessions, link]) session.destroy()
    })
    relay.adopt({ username: 'stub', sessionId: 'sid', token: 'unused', issuedAt: 1 }, link, 'stub')
    // A second tunnel (over the new link) halves every stream window under a budget of 1 MiB; the
    // relay waits SETTINGS_ACK_MS (10 s) for a session to acknowledge a change before closing it.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    expect(statusOf((await tunnelFrom(relay, '127.0.0.3')).answer)).toBe(101)
    vi.advanceTimersByTime(10_000)
    vi.useRealTimers()
    expect(await heard(first, 'after')).toBe(true)
    expect(old.destroyed).toBe(false)
  })
})

async function until(done: () => boolean) {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 10))
}
