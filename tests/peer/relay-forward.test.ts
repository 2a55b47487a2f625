import http from 'node:http'
import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { type Relay, startRelay } from '../../peer/src/relay/relay-server.ts'

// The relay's forwarding, in process, against a stub of a relayed peer (an HTTP/2 server the relay
// holds a client session to, as it does on a registered link): what a misbehaving peer or an odd
// caller can do to the relay. No directory is needed for calls without a token.

const stops: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop()
})

async function relayWithStub(
  handle: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void,
) {
  const stub = http2.createServer()
  stub.on('stream', (stream, headers) => {
    stream.on('error', () => {}) // a stub that resets its own stream sees the reset as an error
    handle(stream, headers)
  })
  await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve))
  stops.push(() => new Promise<void>((resolve) => stub.close(() => resolve())))
  const relay: Relay = await startRelay({
    port: 0,
    host: '127.0.0.1',
    directoryUrl: 'http://127.0.0.1:9',
    maxPeers: 4,
    maxStreamsPerPeer: 8,
    peerRate: undefined,
    log: () => {},
  })
  stops.push(() => relay.stop())
  const link = http2.connect(`http://127.0.0.1:${(stub.address() as AddressInfo).port}`)
  await new Promise((resolve) => link.once('connect', resolve))
  relay.peers.add({ username: 'stub', sessionId: 'sid', token: 'unused', issuedAt: 0 }, link)
  const caller = http2.connect(`http://127.0.0.1:${relay.port}`)
  caller.on('error', () => {})
  stops.push(() => void caller.destroy())
  return { relay, caller }
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
})
