import http from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { type Relay, type RelayOptions, startRelay } from '../../peer/src/relay/relay-server.ts'
import { listen } from '../support/ports.ts'

// The relay's forwarding, in process, against a stub of a relayed peer (an HTTP/2 server the relay
// holds a client session to, as it does on a registered link): what a misbehaving peer or an odd
// caller can do to the relay. No directory is needed for calls without a token.

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
  const relay: Relay = await startRelay({
    port: 0,
    host: '127.0.0.1',
    directoryUrl: 'http://127.0.0.1:9',
    maxPeers: 4,
    maxStreamsPerPeer: 8,
    peerRate: undefined,
    log: () => {},
    ...limits,
  })
  stops.push(() => relay.stop())
  const link = http2.connect(`http://127.0.0.1:${stubPort}`)
  await new Promise((resolve) => link.once('connect', resolve))
  relay.adopt({ username: 'stub', sessionId: 'sid', token: 'unused', issuedAt: 0 }, link, 'stub')
  const caller = callerFrom(relay, '127.0.0.1')
  return { relay, caller, stubSessions }
}

/** A caller connecting from `address` (any of 127/8 on loopback): the relay tells callers apart by address. */
function callerFrom(relay: Relay, address: string) {
  const caller = http2.connect(`http://127.0.0.1:${relay.port}`, {
    createConnection: () => net.connect({ host: '127.0.0.1', port: relay.port, localAddress: address }),
  })
  caller.on('error', () => {})
  stops.push(() => void caller.destroy())
  return caller
}

/** A call whose answer has begun (headers in) and is left unread; resolves with its stream. */
async function heldCall(caller: http2.ClientHttp2Session) {
  const stream = caller.request({
    ':method': 'POST',
    ':path': '/relayed/stub/peerdir.v1.PeerService/Download',
    'content-type': 'application/grpc',
    te: 'trailers',
  })
  stream.on('error', () => {})
  stream.end(Buffer.from([0, 0, 0, 0, 0]))
  const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('response', resolve))
  stream.pause()
  return { stream, headers, closed: new Promise((resolve) => stream.once('close', resolve)) }
}

/** A stub's answer that begins and then holds: headers, a few bytes, and nothing more. */
const holds = (stream: http2.ServerHttp2Stream) => {
  stream.on('data', () => {})
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' })
  stream.write(Buffer.alloc(100))
}

type Answer = {
  headers: http2.IncomingHttpHeaders
  trailers: http2.IncomingHttpHeaders
  endAfterHeaders: boolean
  error?: string
}

function call(caller: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders = {}): Promise<Answer> {
  return new Promise((resolve) => {
    const stream = caller.request({
      ':method': 'POST',
      ':path': '/relayed/stub/peerdir.v1.PeerService/GetInfo',
      'content-type': 'application/grpc',
      te: 'trailers',
      ...headers,
    })
    const answer: Answer = { headers: {}, trailers: {}, endAfterHeaders: false }
    stream.once('response', (h, flags) => {
      answer.headers = h
      // What grpc-js reads a status from headers by: the HEADERS frame itself ends the stream.
      answer.endAfterHeaders = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0
    })
    stream.once('trailers', (t) => {
      answer.trailers = t
    })
    stream.on('error', (err) => {
      answer.error = err.message
    })
    stream.on('data', () => {})
    stream.once('close', () => resolve(answer))
    stream.end(Buffer.from([0, 0, 0, 0, 0]))
  })
}

describe('the relay forwarding to a relayed peer', () => {
  it('survives a peer that resets a call after reading it, and forwards the next', async () => {
    let calls = 0
    const { caller } = await relayWithStub((stream) => {
      calls++
      stream.on('data', () => {})
      if (calls === 1) {
        stream.once('end', () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR))
        return
      }
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true })
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }))
      stream.end(Buffer.from([0, 0, 0, 0, 0]))
    })
    const reset = await call(caller)
    // Answered as gRPC clients read a failure: UNAVAILABLE in a trailers-only answer.
    expect(reset.error).toBeUndefined()
    expect(reset.headers[':status']).toBe(200)
    expect(reset.headers['grpc-status']).toBe('14')
    expect(reset.endAfterHeaders).toBe(true)
    const next = await call(caller)
    expect(next.trailers['grpc-status']).toBe('0')
  })

  it('passes a trailers-only failure on as one, so gRPC clients read its status', async () => {
    const { caller } = await relayWithStub((stream) => {
      stream.on('data', () => {})
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-status': '5',
          'grpc-message': 'no such file',
        },
        { endStream: true },
      )
    })
    const answer = await call(caller)
    expect(answer.endAfterHeaders).toBe(true)
    expect(answer.headers['grpc-status']).toBe('5')
    expect(answer.headers['grpc-message']).toBe('no such file')
    // The relay's own refusals too.
    const other = await call(caller, { ':path': '/peerdir.v1.ControlService/Status' })
    expect(other.endAfterHeaders).toBe(true)
    expect(other.headers['grpc-status']).toBe('12')
  })

  it('drops hop-by-hop headers of an HTTP/1.1 caller, those named in Connection and a TE other than trailers', async () => {
    let seen: http2.IncomingHttpHeaders = {}
    const { relay } = await relayWithStub((stream, headers) => {
      seen = headers
      stream.on('data', () => {})
      stream.respond({ ':status': 200, 'content-type': 'application/json' })
      stream.end('{}')
    })
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: relay.port,
          method: 'POST',
          path: '/relayed/stub/peerdir.v1.PeerService/GetInfo',
          headers: {
            'content-type': 'application/json',
            te: 'gzip',
            connection: 'x-secret',
            'x-secret': '1',
            'x-kept': '2',
          },
        },
        (res) => {
          res.resume()
          resolve(res.statusCode ?? 0)
        },
      )
      req.on('error', reject)
      req.end('{}')
    })
    expect(status).toBe(200)
    expect(seen.te).toBeUndefined()
    expect(seen['x-secret']).toBeUndefined()
    expect(seen['x-kept']).toBe('2')
  })

  it('paces the bytes through one peer, both ways together, at --max-peer-rate', async () => {
    const rate = 512 * 1024
    const half = 512 * 1024
    let uploaded = 0
    const { caller } = await relayWithStub(
      (stream) => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true })
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }))
        stream.on('data', (part: Buffer) => {
          uploaded += part.length
        })
        stream.write(Buffer.alloc(half))
        stream.once('end', () => stream.end())
      },
      { peerRate: rate },
    )
    const started = performance.now()
    const downloaded = await new Promise<number>((resolve) => {
      const stream = caller.request({
        ':method': 'POST',
        ':path': '/relayed/stub/peerdir.v1.PeerService/Upload',
        'content-type': 'application/grpc',
        te: 'trailers',
      })
      let bytes = 0
      stream.on('data', (part: Buffer) => {
        bytes += part.length
      })
      stream.once('close', () => resolve(bytes))
      stream.end(Buffer.alloc(half))
    })
    const seconds = (performance.now() - started) / 1000
    expect([uploaded, downloaded]).toEqual([half, half])
    // A lower bound only, which no load can break: the bucket's burst (a quarter second) and a frame
    // or four granted at its edge, then the rate. Unpaced, both halves cross in milliseconds.
    const unpaced = rate / 4 + 64 * 1024
    expect(seconds).toBeGreaterThanOrEqual((uploaded + downloaded - unpaced) / rate)
  })

  it('cuts a call moving less than the minimum rate over a period, and one moving nothing', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const { caller } = await relayWithStub(holds, { minCallRate: 8 * 1024 })
    const call = await heldCall(caller)
    call.stream.resume()
    // 100 bytes in a period of 20 s, where 160 KiB are due: cut at the period's end, not a minute on.
    vi.advanceTimersByTime(20_000)
    await call.closed
    expect(call.stream.rstCode).toBe(http2.constants.NGHTTP2_CANCEL)
  })

  it('lets a caller in when a peer’s calls are all taken: the slowest call of a heavier caller gives way', async () => {
    const { relay } = await relayWithStub(holds)
    // Eight calls at most, two (a quarter) per caller: four callers fill them.
    const calls = []
    for (const address of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']) {
      const from = callerFrom(relay, address)
      for (let i = 0; i < 2; i++) calls.push(await heldCall(from))
    }
    expect(calls.map((c) => c.headers['grpc-status'])).toEqual(Array(8).fill(undefined))
    const newcomer = callerFrom(relay, '127.0.0.6')
    const late = await heldCall(newcomer)
    expect(late.headers['grpc-status']).toBeUndefined()
    expect(late.headers[':status']).toBe(200)
    await Promise.race(calls.map((c) => c.closed))
    // Its second call likewise (others still hold two); a third passes its own share, and is refused.
    expect((await heldCall(newcomer)).headers['grpc-status']).toBeUndefined()
    const third = await heldCall(newcomer)
    expect(third.headers['grpc-status']).toBe('8')
    expect(decodeURIComponent(String(third.headers['grpc-message']))).toMatch(/you already have 2 calls/)
  })

  it('lets a caller have more calls when a full peer’s others only sit on theirs (nothing moved for 5 s)', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const { relay } = await relayWithStub(holds)
    // Eight callers, one call each: nobody holds more than another.
    for (let i = 0; i < 8; i++) await heldCall(callerFrom(relay, `127.0.0.${30 + i}`))
    const newcomer = callerFrom(relay, '127.0.0.50')
    expect((await heldCall(newcomer)).headers['grpc-status']).toBeUndefined() // took one of the eight
    const second = await heldCall(newcomer)
    expect(second.headers['grpc-status']).toBe('8') // every other caller holds one, and they just began
    vi.setSystemTime(Date.now() + 6000)
    expect((await heldCall(newcomer)).headers['grpc-status']).toBeUndefined() // an idle one gives way
  })

  it('shrinks every session’s stream window as calls grow, and caps the calls under --max-buffer', async () => {
    const { relay, stubSessions } = await relayWithStub(holds, {
      maxBufferBytes: 1024 * 1024,
      maxStreamsPerPeer: 64,
    })
    const link = stubSessions[0] as http2.ServerHttp2Session
    const shrunk = new Promise<void>((resolve) => {
      const check = () => {
        if ((link.remoteSettings.initialWindowSize ?? 65_535) <= 32 * 1024) resolve()
      }
      link.on('remoteSettings', check)
      check()
    })
    // 1 MiB for calls that may hold two windows each: at most 16 calls of 32 KiB windows.
    const addresses = Array.from({ length: 4 }, (_, i) => `127.0.0.${10 + i}`)
    for (const address of addresses) {
      const from = callerFrom(relay, address)
      for (let i = 0; i < 4; i++) await heldCall(from)
    }
    await shrunk
    const refused = await call(callerFrom(relay, '127.0.0.20'))
    expect(refused.headers['grpc-status']).toBe('8')
    expect(decodeURIComponent(String(refused.headers['grpc-message']))).toMatch(/most calls \(16\)/)
  })
})
