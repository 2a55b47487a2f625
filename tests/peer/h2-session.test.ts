import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import http2 from 'node:http2'
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import {
  ErrorCode,
  Flag,
  FRAME_HEADER_BYTES,
  FrameType,
  frame,
  goawayFrame,
  PREFACE,
  readFrameHeader,
  rstStreamFrame,
  Setting,
  settingsFrame,
} from '../../peer/src/wire/h2-frames.ts'
import { H2ClientSession, type StreamSink } from '../../peer/src/wire/h2-session.ts'
import { encodeHeaderBlock, encodeInteger, HeaderBlockDecoder } from '../../peer/src/wire/header-block.ts'

// The downloader's own HTTP/2 client: against node:http2's server (Huffman-coded headers, its flow
// control, its stream limit) and against a raw server that breaks the protocol on purpose.

const WINDOW = 1024 * 1024
const cleanup: Array<() => void> = []
afterEach(() => {
  for (const undo of cleanup.splice(0)) undo()
})

/** A sink that records everything; `hold` says how many bytes of each DATA piece it sets aside. */
class Recorder implements StreamSink {
  headers: Array<{ fields: Record<string, string>; end: boolean }> = []
  chunks: Buffer[] = []
  ended = false
  error: Error | undefined
  hold = (_bytes: Buffer) => 0
  readonly done: Promise<void>
  #settle: () => void = () => {}
  constructor() {
    this.done = new Promise((resolve) => {
      this.#settle = resolve
    })
  }
  onHeaders(fields: Record<string, string>, end: boolean) {
    this.headers.push({ fields, end })
  }
  onData(bytes: Buffer) {
    this.chunks.push(Buffer.from(bytes))
    return this.hold(bytes)
  }
  onEnd() {
    this.ended = true
    this.#settle()
  }
  onError(err: Error) {
    this.error = err
    this.#settle()
  }
  get body() {
    return Buffer.concat(this.chunks)
  }
}

async function connect(port: number, window = WINDOW) {
  const socket = net.connect({ host: '127.0.0.1', port })
  const session = new H2ClientSession(socket, {
    streamWindow: window,
    sessionWindow: 8 * window,
    maxFrameBytes: 64 * 1024,
    origin: new URL(`http://127.0.0.1:${port}`),
  })
  cleanup.push(() => session.destroy())
  return session
}

async function listen(server: net.Server | http2.Http2Server): Promise<number> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  cleanup.push(() => server.close())
  return (server.address() as net.AddressInfo).port
}

describe('the download session against node:http2', () => {
  it('reads a response, its Huffman-coded headers and its trailers, byte for byte', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 5)
    const server = http2.createServer()
    server.on('stream', (stream, headers) => {
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc+proto', 'x-asked': String(headers['x-ask']) },
        { waitForTrailers: true },
      )
      stream.on('wantTrailers', () =>
        stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'all%20sent' }),
      )
      stream.end(body)
    })
    const session = await connect(await listen(server))
    const call = new Recorder()
    session.request('/peerdir.v1.PeerService/Download', [['x-ask', 'a value to echo']], Buffer.of(1, 2), call)
    await call.done
    expect(call.error).toBeUndefined()
    expect(call.body.equals(body)).toBe(true)
    expect(call.headers).toEqual([
      {
        fields: expect.objectContaining({
          ':status': '200',
          'content-type': 'application/grpc+proto',
          'x-asked': 'a value to echo',
        }),
        end: false,
      },
      { fields: { 'grpc-status': '0', 'grpc-message': 'all%20sent' }, end: true },
    ])
  })

  it('keeps talking to a server that keeps no header table', async () => {
    const server = http2.createServer({ settings: { headerTableSize: 0 } })
    server.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200, 'x-path': String(headers[':path']) })
      stream.end()
    })
    const session = await connect(await listen(server))
    for (const path of ['/one', '/two', '/three']) {
      const call = new Recorder()
      session.request(path, [['x-same', 'header in every call']], Buffer.alloc(0), call)
      await call.done
      expect(call.error).toBeUndefined()
      expect(call.headers[0]?.fields['x-path']).toBe(path)
    }
  })

  it('keeps to the server’s stream limit, starting the calls beyond it as others end', async () => {
    let open = 0
    let most = 0
    const server = http2.createServer({ settings: { maxConcurrentStreams: 2 } })
    server.on('stream', (stream) => {
      most = Math.max(most, ++open)
      stream.respond({ ':status': 200 })
      setTimeout(() => stream.end('done'), 20)
      stream.once('close', () => open--)
    })
    const session = await connect(await listen(server))
    // The first call is answered once the server's SETTINGS are in, so all six see its limit.
    const first = new Recorder()
    session.request('/', [], Buffer.alloc(0), first)
    await first.done
    const calls = Array.from({ length: 6 }, () => new Recorder())
    for (const call of calls) session.request('/', [], Buffer.alloc(0), call)
    await Promise.all(calls.map((call) => call.done))
    expect(calls.map((call) => call.body.toString())).toEqual(Array(6).fill('done'))
    expect(most).toBe(2)
  })

  it('holds the server back by what its reader set aside, and lets it go on once released', async () => {
    const body = randomBytes(4 * WINDOW)
    const server = http2.createServer()
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200 })
      stream.end(body)
    })
    const session = await connect(await listen(server))
    const call = new Recorder()
    let held = 0
    call.hold = (bytes) => {
      held += bytes.length
      return bytes.length
    }
    const stream = session.request('/', [], Buffer.alloc(0), call)
    // Nothing credited back: the server stops at the call's window (more would fail the connection).
    while (held < WINDOW) await new Promise((resolve) => setTimeout(resolve, 10))
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(held).toBe(WINDOW)
    expect(call.ended).toBe(false)
    call.hold = () => 0
    stream.release(held)
    await call.done
    expect(call.body.equals(body)).toBe(true)
  })
})

/**
 * A server speaking raw frames: it reads the client's preface and frames and answers through `script`,
 * given each client frame as it arrives.
 */
async function rawServer(
  script: (
    frame: { type: number; flags: number; stream: number; payload: Buffer },
    socket: net.Socket,
  ) => void,
  settings: Array<[number, number]> = [],
): Promise<number> {
  const server = net.createServer((socket) => {
    let pending = Buffer.alloc(0)
    let prefaced = false
    socket.on('error', () => {})
    socket.on('data', (bytes) => {
      pending = Buffer.concat([pending, bytes])
      if (!prefaced) {
        if (pending.length < PREFACE.length) return
        prefaced = true
        pending = pending.subarray(PREFACE.length)
        socket.write(settingsFrame(settings))
      }
      while (pending.length >= FRAME_HEADER_BYTES) {
        const header = readFrameHeader(pending)
        if (pending.length < FRAME_HEADER_BYTES + header.length) return
        const payload = pending.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + header.length)
        pending = pending.subarray(FRAME_HEADER_BYTES + header.length)
        script({ ...header, payload }, socket)
      }
    })
  })
  return listen(server)
}

const headersFrame = (stream: number, fields: Array<[string, string]>, flags = 0) =>
  frame(FrameType.HEADERS, Flag.END_HEADERS | flags, stream, encodeHeaderBlock(fields))

describe('the download session against a server that breaks the protocol', () => {
  it('fails the connection’s calls when the server sends more than the window, and says why', async () => {
    let told: ((code: number) => void) | undefined
    const goaway = new Promise<number>((resolve) => {
      told = resolve
    })
    const port = await rawServer(({ type, stream, payload }, socket) => {
      if (type === FrameType.GOAWAY) told?.(payload.readUInt32BE(4))
      if (type !== FrameType.HEADERS) return
      socket.write(headersFrame(stream, [[':status', '200']]))
      const piece = Buffer.alloc(60 * 1024)
      for (let sent = 0; sent <= 64 * 1024; sent += piece.length)
        socket.write(frame(FrameType.DATA, 0, stream, piece))
    })
    const session = await connect(port, 64 * 1024)
    const call = new Recorder()
    call.hold = (bytes) => bytes.length // nothing consumed: the window never reopens
    session.request('/', [], Buffer.alloc(0), call)
    await call.done
    expect(call.error?.message).toMatch(/FLOW_CONTROL_ERROR: the source overran/)
    expect(session.destroyed).toBe(true)
    expect(await goaway).toBe(ErrorCode.FLOW_CONTROL_ERROR)
  })

  it('refuses a header block spread over endless empty CONTINUATIONs', async () => {
    const port = await rawServer(({ type, stream }, socket) => {
      if (type !== FrameType.HEADERS) return
      socket.write(frame(FrameType.HEADERS, 0, stream, encodeHeaderBlock([[':status', '200']])))
      const empty = frame(FrameType.CONTINUATION, 0, stream)
      socket.write(Buffer.concat(Array(20_000).fill(empty)))
    })
    const session = await connect(port)
    const call = new Recorder()
    session.request('/', [], Buffer.alloc(0), call)
    await call.done
    expect(call.error?.message).toMatch(/header block too large/)
  })

  it('cuts off a server that floods it with PINGs and never reads the answers', async () => {
    const server = net.createServer((socket) => {
      socket.on('error', () => {})
      socket.once('data', () => {
        socket.pause() // the client's preface, then never another byte read
        const ping = frame(FrameType.PING, 0, 0, Buffer.alloc(8))
        const burst = Buffer.concat(Array(10_000).fill(ping))
        const flood = () => {
          while (!socket.destroyed && socket.write(burst)) {}
          if (!socket.destroyed) socket.once('drain', flood)
        }
        socket.write(settingsFrame([]))
        flood()
      })
    })
    const session = await connect(await listen(server))
    const call = new Recorder()
    session.request('/', [], Buffer.alloc(0), call)
    await call.done
    expect(call.error?.message).toMatch(/ENHANCE_YOUR_CALM: the source does not read/)
    expect(session.destroyed).toBe(true)
  })

  it('fails its calls at once on a GOAWAY that gives an error, though the socket stays open', async () => {
    const port = await rawServer(({ type }, socket) => {
      if (type === FrameType.HEADERS) socket.write(goawayFrame(1, ErrorCode.PROTOCOL_ERROR))
    })
    const session = await connect(port)
    const call = new Recorder()
    session.request('/', [], Buffer.alloc(0), call)
    await call.done
    expect(call.error?.message).toBe('the source is going away (PROTOCOL_ERROR)')
    expect(session.destroyed).toBe(true)
  })

  it('refuses a frame larger than it allows, and a push it never asked for', async () => {
    for (const [evil, why] of [
      [(stream: number) => frame(FrameType.DATA, 0, stream, Buffer.alloc(64 * 1024 + 1)), /FRAME_SIZE_ERROR/],
      [
        (stream: number) => frame(FrameType.PUSH_PROMISE, Flag.END_HEADERS, stream, Buffer.alloc(4)),
        /pushed/,
      ],
      [(stream: number) => frame(FrameType.DATA, 0, stream + 2, Buffer.alloc(1)), /DATA on no call/],
    ] as const) {
      const port = await rawServer(({ type, stream }, socket) => {
        if (type !== FrameType.HEADERS) return
        socket.write(headersFrame(stream, [[':status', '200']]))
        socket.write(evil(stream))
      })
      const session = await connect(port)
      const call = new Recorder()
      session.request('/', [], Buffer.alloc(0), call)
      await call.done
      expect(call.error?.message).toMatch(why)
    }
  })

  it('refuses a header block that expands past its bound (an HPACK bomb)', async () => {
    const port = await rawServer(({ type, stream }, socket) => {
      if (type !== FrameType.HEADERS) return
      // One 4,000-byte value put in the table, then named again 100 times: 400 kB from 4 kB.
      const value = 'x'.repeat(4000)
      const block = Buffer.concat([
        Buffer.of(0x40),
        encodeInteger(1, 7),
        Buffer.from('a'),
        encodeInteger(value.length, 7),
        Buffer.from(value),
        Buffer.alloc(100, 0x80 | 62),
      ])
      socket.write(frame(FrameType.HEADERS, Flag.END_HEADERS, stream, block))
    })
    const session = await connect(port)
    const call = new Recorder()
    session.request('/', [], Buffer.alloc(0), call)
    await call.done
    expect(call.error?.message).toMatch(/headers of more than 65536 bytes/)
    expect(call.headers).toEqual([])
  })

  it('answers PINGs, reads padded DATA and a block split over CONTINUATION, and ends on trailers', async () => {
    let pingAck: Buffer | undefined
    const port = await rawServer(({ type, flags, stream, payload }, socket) => {
      if (type === FrameType.PING && flags & Flag.ACK) {
        pingAck = Buffer.from(payload)
        // The call ends once the PING is answered.
        socket.write(headersFrame(1, [['grpc-status', '0']], Flag.END_STREAM))
      }
      if (type !== FrameType.HEADERS) return
      socket.write(frame(FrameType.PING, 0, 0, Buffer.from('12345678')))
      const block = encodeHeaderBlock([
        [':status', '200'],
        ['content-type', 'application/grpc'],
      ])
      socket.write(frame(FrameType.HEADERS, 0, stream, block.subarray(0, 5)))
      socket.write(frame(FrameType.CONTINUATION, Flag.END_HEADERS, stream, block.subarray(5)))
      // 3 bytes of data behind a pad length of 4.
      socket.write(frame(FrameType.DATA, Flag.PADDED, stream, Buffer.from([4, 0x61, 0x62, 0x63, 0, 0, 0, 0])))
      socket.write(frame(FrameType.DATA, 0, stream, Buffer.from('def')))
    })
    const session = await connect(port)
    const call = new Recorder()
    session.request('/', [], Buffer.alloc(0), call)
    await call.done
    expect(call.error).toBeUndefined()
    expect(call.body.toString()).toBe('abcdef')
    expect(call.headers.map((h) => h.fields)).toEqual([
      { ':status': '200', 'content-type': 'application/grpc' },
      { 'grpc-status': '0' },
    ])
    expect(pingAck?.toString()).toBe('12345678')
  })

  it('on GOAWAY, fails the calls the server never took and finishes the one it did', async () => {
    const port = await rawServer(({ type, stream }, socket) => {
      if (type !== FrameType.HEADERS || stream !== 3) return
      // Both calls are in: the server takes the first, and goes away before the second.
      socket.write(goawayFrame(1, ErrorCode.NO_ERROR))
      socket.write(headersFrame(1, [[':status', '200']]))
      socket.write(frame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.from('taken')))
    })
    const session = await connect(port)
    const [taken, left] = [new Recorder(), new Recorder()]
    session.request('/', [], Buffer.alloc(0), taken)
    session.request('/', [], Buffer.alloc(0), left)
    await Promise.all([taken.done, left.done])
    expect(left.error?.message).toBe('the source is going away (NO_ERROR)')
    expect(taken.error).toBeUndefined()
    expect(taken.body.toString()).toBe('taken')
    expect(session.closed).toBe(true)
    expect(() => session.request('/', [], Buffer.alloc(0), new Recorder())).toThrow(/closed/)
  })

  it('fails a call the server resets, and keeps the connection for the others', async () => {
    const port = await rawServer(({ type, stream }, socket) => {
      if (type !== FrameType.HEADERS) return
      if (stream === 1) socket.write(rstStreamFrame(1, ErrorCode.REFUSED_STREAM))
      else socket.write(headersFrame(stream, [[':status', '200']], Flag.END_STREAM))
    })
    const session = await connect(port)
    const [reset, fine] = [new Recorder(), new Recorder()]
    session.request('/', [], Buffer.alloc(0), reset)
    await reset.done
    session.request('/', [], Buffer.alloc(0), fine)
    await fine.done
    expect(reset.error?.message).toBe('the source reset the call (REFUSED_STREAM)')
    expect(fine.error).toBeUndefined()
    expect(fine.ended).toBe(true)
  })

  it('holds a request body the server’s window has no room for, until the server opens it', async () => {
    const events: string[] = []
    const port = await rawServer(
      ({ type, stream, payload }, socket) => {
        if (type === FrameType.DATA) events.push(`client DATA ${payload.length} bytes`)
        if (type === FrameType.DATA && payload.length > 0)
          socket.write(headersFrame(stream, [[':status', '200']], Flag.END_STREAM))
        if (type !== FrameType.HEADERS) return
        events.push('client HEADERS')
        if (stream === 1) socket.write(headersFrame(stream, [[':status', '200']], Flag.END_STREAM))
        else {
          events.push('server WINDOW_UPDATE')
          socket.write(frame(FrameType.WINDOW_UPDATE, 0, stream, Buffer.from([0, 0, 0, 100])))
        }
      },
      [[Setting.INITIAL_WINDOW_SIZE, 10]], // a call may send 10 bytes until told more
    )
    const session = await connect(port)
    // A first call answered: the server's SETTINGS, sent before, are in force.
    const first = new Recorder()
    session.request('/', [], Buffer.alloc(0), first)
    await first.done
    const call = new Recorder()
    session.request('/', [], Buffer.alloc(20), call)
    await call.done
    expect(call.ended).toBe(true)
    expect(events).toEqual([
      'client HEADERS',
      'client DATA 0 bytes',
      'client HEADERS',
      'server WINDOW_UPDATE',
      'client DATA 20 bytes',
    ])
  })
})

describe('HeaderBlockDecoder', () => {
  it('keeps the table across blocks, as the connection’s', () => {
    const decoder = new HeaderBlockDecoder()
    const first = Buffer.concat([
      Buffer.of(0x40),
      encodeInteger(3, 7),
      Buffer.from('key'),
      encodeInteger(5, 7),
      Buffer.from('value'),
    ])
    expect(decoder.decode(first)).toEqual([['key', 'value']])
    expect(decoder.decode(Buffer.of(0x80 | 62, 0x80 | 8))).toEqual([
      ['key', 'value'],
      [':status', '200'],
    ])
    expect(() => decoder.decode(Buffer.of(0x80 | 63))).toThrow(/malformed header block/)
    expect(() => decoder.decode(Buffer.of(0x20 | 31, 0xff, 0x7f))).toThrow(/malformed header block/)
  })
})
