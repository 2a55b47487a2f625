import net from 'node:net'
import type { Duplex } from 'node:stream'
import tls from 'node:tls'
import { H2FrameReader } from './h2-frame-reader.ts'
import {
  DEFAULT_FRAME_BYTES,
  DEFAULT_WINDOW,
  ErrorCode,
  errorCodeName,
  Flag,
  FRAME_HEADER_BYTES,
  type FrameHeader,
  FrameType,
  frame,
  goawayFrame,
  H2ProtocolError,
  MAX_FRAME_SIZE_SETTING,
  MAX_WINDOW,
  PREFACE,
  protocolError,
  rstStreamFrame,
  Setting,
  settingsFrame,
  windowUpdateFrame,
} from './h2-frames.ts'
import {
  encodeHeaderBlock,
  HeaderBlockDecoder,
  HeaderBlockError,
  MAX_HEADER_LIST_BYTES,
} from './header-block.ts'

/** What a call is told, on the thread that reads the socket. */
export interface StreamSink {
  /** The response's headers (`end`: trailers-only), then its trailers (`end` true). */
  onHeaders(fields: Record<string, string>, end: boolean): void
  /**
   * Bytes of the response body, valid only during the call (they sit in the socket's read buffer).
   * Returns how many of them it keeps for now: the window stays closed by that much until it lets them
   * go (H2Stream.release), so what it keeps is bounded by the window.
   */
  onData(bytes: Buffer): number
  /** The response ended (after its trailers, or its last DATA). */
  onEnd(): void
  /** The call failed: reset by the server, or its connection lost. */
  onError(err: Error): void
}

export type H2SessionOptions = {
  /** The window each call opens, and the connection's (bounds what a slow reader lets pile up). */
  streamWindow: number
  sessionWindow: number
  /** The largest DATA frame this side accepts. */
  maxFrameBytes: number
  /** The URL's origin, for :scheme and :authority. */
  origin: URL
}

/** A socket's `onread` option (net.connect, tls.connect): bytes land in `buffer`, then `callback`. */
export type SocketReader = { buffer: Uint8Array; callback: (length: number, buffer: Uint8Array) => boolean }

/** Where every session's socket reads (a read of a TLS socket is at most a few records). */
const READ_BUFFER_BYTES = 256 * 1024
let readBuffer: Buffer | undefined

/**
 * What this side lets wait unsent on its socket. It only ever sends requests, window updates and
 * acknowledgements: a server that makes it queue more (PINGs, SETTINGS) while never reading is cut off.
 */
const MAX_UNSENT_BYTES = 1024 * 1024

/** After a GOAWAY that says why this side ends the connection, it is cut this soon if still open. */
const GOAWAY_GRACE_MS = 1000

/** Control frames (and header block fragments) are held whole; DATA never is. */
const MAX_CONTROL_BYTES = MAX_HEADER_LIST_BYTES

/** A header block spread over HEADERS and CONTINUATION frames; `end`: its HEADERS ended the call. */
type HeaderBlock = { stream: number; end: boolean; parts: Buffer[]; bytes: number }

type Stream = {
  id: number
  sink: StreamSink
  headers: Buffer
  body: Buffer | undefined // not yet sent: waits for send window
  sendWindow: number
  recvWindow: number
  owed: number // consumed, not yet credited back with WINDOW_UPDATE
  held: number // kept by the sink, not yet let go
  gotHeaders: boolean
}

/** One call of an H2ClientSession: the bytes its sink kept are let go through it; cancel ends it. */
export class H2Stream {
  readonly #session: H2ClientSession
  readonly #stream: Stream

  constructor(session: H2ClientSession, stream: Stream) {
    this.#session = session
    this.#stream = stream
  }

  /** Bytes the sink kept are let go: the server may send that many more. */
  release(bytes: number) {
    this.#session.release(this.#stream, bytes)
  }

  /** Ends the call (RST_STREAM CANCEL); its sink hears nothing more. */
  cancel() {
    this.#session.cancel(this.#stream)
  }
}

/**
 * A client HTTP/2 connection for the download calls, on the socket it is given: what node:http2 did
 * for them, with a third less CPU on the receiving thread and next to no garbage (README, "Benchmarks").
 * A TLS socket made with `onread` (H2ClientSession.reader) lands its decrypted bytes in one buffer,
 * reused, and each DATA frame's payload goes from there to its sink in place: no buffer made per read,
 * nothing for the collector, no copy in nghttp2 or a stream.
 *
 * Everything the server sends is checked: frame sizes, windows (more than the window is a
 * FLOW_CONTROL_ERROR), header blocks (HPACK, bounded in what they expand to), stream ids, a PUSH_PROMISE
 * never asked for. A violation ends the connection and fails its calls, so they are asked elsewhere.
 * Nothing is written before the socket is connected (for TLS: its key checked, peer-connection.ts), so a
 * refused key never sees a request or its token.
 */
export class H2ClientSession {
  readonly #socket: Duplex
  readonly #options: H2SessionOptions
  readonly #decoder = new HeaderBlockDecoder()
  readonly #streams = new Map<number, Stream>()
  readonly #queued: Stream[] = [] // waiting for the server's concurrency limit
  #pendingWrites: Buffer[] | undefined = [] // until the socket is connected
  #outbox: Buffer[] | undefined // while a read is parsed: what it calls for goes out in one write
  #nextId = 1
  #closing = false
  #destroyed = false
  #onClose: Array<() => void> = []
  // The server's settings and the send window: this side only sends small request bodies.
  #maxStreams = Number.POSITIVE_INFINITY
  #peerInitialWindow = DEFAULT_WINDOW
  #peerMaxFrame = DEFAULT_FRAME_BYTES
  #sendWindow = DEFAULT_WINDOW
  // The receive window: what the server may still send, and what was consumed since the last update.
  #recvWindow: number
  #owed = 0
  readonly #reader: H2FrameReader
  #block: HeaderBlock | undefined

  constructor(socket: Duplex, options: H2SessionOptions) {
    this.#socket = socket
    this.#options = options
    this.#recvWindow = options.sessionWindow
    this.#reader = new H2FrameReader(
      {
        frameStart: (header) => this.#frameStart(header),
        data: (header, bytes) => this.#data(header, bytes),
        padding: (header, bytes) => this.#padding(header, bytes),
        frameEnd: (header, payload) => this.#frameEnd(header, payload),
      },
      { maxFrameBytes: options.maxFrameBytes, maxControlBytes: MAX_CONTROL_BYTES },
    )
    socket.on('data', (bytes: Buffer) => this.feed(bytes)) // a socket made with `onread` has no 'data' events
    socket.on('error', (err: Error) => this.destroy(err))
    socket.on('end', () => this.destroy(new Error('the source closed the connection')))
    socket.on('close', () => this.destroy(new Error('the connection closed')))
    const event = connectingEvent(socket)
    if (event) socket.once(event, () => this.#connected())
    else this.#connected()
  }

  /**
   * The `onread` option for the socket this session will read (`session` returns it once made). Every
   * such socket reads into the same buffer: each read is parsed, and what is kept copied out, before
   * the callback returns.
   */
  static reader(session: () => H2ClientSession | undefined): SocketReader {
    readBuffer ??= Buffer.allocUnsafe(READ_BUFFER_BYTES)
    const buffer = readBuffer
    return {
      buffer,
      callback: (length: number) => {
        session()?.feed(buffer, length)
        return true
      },
    }
  }

  /** No new call may start on it: it is going away or gone. */
  get closed(): boolean {
    return this.#closing || this.#destroyed
  }

  get destroyed(): boolean {
    return this.#destroyed
  }

  onClose(listener: () => void) {
    if (this.#destroyed) listener()
    else this.#onClose.push(listener)
  }

  /** Starts a POST to `path`: its other request headers and its whole (small) body. */
  request(path: string, fields: Array<[string, string]>, body: Buffer, sink: StreamSink): H2Stream {
    if (this.closed) throw new Error('the connection is closed')
    const headers = encodeHeaderBlock([
      [':method', 'POST'],
      [':scheme', this.#options.origin.protocol.replace(/:$/, '')],
      [':authority', this.#options.origin.host],
      [':path', path],
      ...fields,
    ])
    const stream: Stream = {
      id: 0,
      sink,
      headers,
      body,
      sendWindow: 0,
      recvWindow: this.#options.streamWindow,
      owed: 0,
      held: 0,
      gotHeaders: false,
    }
    this.#queued.push(stream)
    this.#startQueued()
    return new H2Stream(this, stream)
  }

  /** Lets the calls under way finish, starts none, then closes. */
  close() {
    if (this.#destroyed || this.#closing) return
    this.#closing = true
    this.#failQueued(new Error('the connection is closing'))
    if (this.#streams.size > 0) this.#write(goawayFrame(0, ErrorCode.NO_ERROR))
    else this.#end()
  }

  /**
   * The last call of a closing connection is over: the server is told (a socket destroyed at once would
   * drop that GOAWAY, and a server that sees only the end of the stream may hold the connection on).
   */
  #end() {
    this.destroy(undefined, ErrorCode.NO_ERROR)
  }

  /** Ends the connection at once, failing its calls; `goaway`: the error code it tells the server first. */
  destroy(err?: Error, goaway?: number) {
    if (this.#destroyed) return
    const connected = !this.#pendingWrites
    this.#destroyed = true
    this.#closing = true
    const failure = err ?? new Error('the connection closed')
    this.#failQueued(failure)
    const streams = [...this.#streams.values()]
    this.#streams.clear()
    for (const stream of streams) stream.sink.onError(failure)
    if (goaway !== undefined && connected && !this.#socket.destroyed) {
      this.#socket.end(goawayFrame(0, goaway))
      setTimeout(() => this.#socket.destroy(), GOAWAY_GRACE_MS).unref()
    } else {
      this.#socket.destroy()
    }
    for (const listener of this.#onClose.splice(0)) listener()
  }

  release(stream: Stream, bytes: number) {
    if (this.#streams.get(stream.id) !== stream) return // ended: what it held went back then (#settle)
    const released = Math.min(bytes, stream.held)
    stream.held -= released
    this.#credit(stream, released)
  }

  cancel(stream: Stream) {
    const queued = this.#queued.indexOf(stream)
    if (queued >= 0) {
      this.#queued.splice(queued, 1)
      return
    }
    if (this.#streams.get(stream.id) !== stream) return
    this.#streams.delete(stream.id)
    this.#write(rstStreamFrame(stream.id, ErrorCode.CANCEL))
    this.#settle(stream)
  }

  /** Bytes read from the socket (the first `length` of `bytes`): frames, parsed as they arrive. */
  feed(bytes: Buffer, length = bytes.length) {
    if (this.#destroyed) return
    this.#outbox = []
    try {
      let at = 0
      while (at < length && !this.#destroyed) at = this.#reader.read(bytes, at, length)
    } catch (err) {
      const failure = err instanceof Error ? err : new Error(String(err))
      this.destroy(failure, errorCodeOf(failure))
    } finally {
      const out = this.#outbox
      this.#outbox = undefined
      if (out.length > 0) this.#send(out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out))
    }
  }

  #connected() {
    const pending = this.#pendingWrites ?? []
    this.#pendingWrites = undefined
    if (this.#destroyed) return
    this.#socket.write(
      Buffer.concat([
        PREFACE,
        settingsFrame([
          [Setting.ENABLE_PUSH, 0],
          [Setting.INITIAL_WINDOW_SIZE, this.#options.streamWindow],
          [Setting.MAX_FRAME_SIZE, this.#options.maxFrameBytes],
          [Setting.MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST_BYTES],
        ]),
        windowUpdateFrame(0, this.#options.sessionWindow - DEFAULT_WINDOW),
        ...pending,
      ]),
    )
  }

  #write(bytes: Buffer) {
    if (this.#destroyed) return
    if (this.#pendingWrites) this.#pendingWrites.push(bytes)
    else if (this.#outbox) this.#outbox.push(bytes)
    else this.#send(bytes)
  }

  #send(bytes: Buffer) {
    if (this.#destroyed) return
    this.#socket.write(bytes)
    if (this.#socket.writableLength > MAX_UNSENT_BYTES)
      this.destroy(
        protocolError('does not read what this side sends', ErrorCode.ENHANCE_YOUR_CALM),
        ErrorCode.ENHANCE_YOUR_CALM,
      )
  }

  #startQueued() {
    while (this.#queued.length > 0 && this.#streams.size < this.#maxStreams && !this.#destroyed) {
      const stream = this.#queued.shift() as Stream
      stream.id = this.#nextId
      this.#nextId += 2
      stream.sendWindow = this.#peerInitialWindow
      this.#streams.set(stream.id, stream)
      this.#writeHeaders(stream)
      this.#sendBody(stream)
    }
  }

  #writeHeaders(stream: Stream) {
    const block = stream.headers
    let at = 0
    do {
      const part = block.subarray(at, at + this.#peerMaxFrame)
      const type = at === 0 ? FrameType.HEADERS : FrameType.CONTINUATION
      at += part.length
      this.#write(frame(type, at >= block.length ? Flag.END_HEADERS : 0, stream.id, part))
    } while (at < block.length)
  }

  #sendBody(stream: Stream) {
    const body = stream.body
    if (!body || body.length > Math.min(stream.sendWindow, this.#sendWindow, this.#peerMaxFrame)) return
    stream.body = undefined
    stream.sendWindow -= body.length
    this.#sendWindow -= body.length
    this.#write(frame(FrameType.DATA, Flag.END_STREAM, stream.id, body))
  }

  #failQueued(err: Error) {
    for (const stream of this.#queued.splice(0)) stream.sink.onError(err)
  }

  /** A stream is done (ended, reset or cancelled): what it held back returns to the connection's window. */
  #settle(stream: Stream) {
    this.#owed += stream.held // what it consumed is counted already (#credit)
    stream.held = 0
    this.#creditConnection()
    if (this.#closing && this.#streams.size === 0) this.#end()
    else this.#startQueued()
  }

  #credit(stream: Stream, bytes: number) {
    if (bytes <= 0) return
    if (this.#streams.get(stream.id) === stream) {
      stream.owed += bytes
      // Credited back once a quarter of the window is consumed: the sender never waits on it.
      if (stream.owed >= this.#options.streamWindow / 4) {
        this.#write(windowUpdateFrame(stream.id, stream.owed))
        stream.recvWindow += stream.owed
        stream.owed = 0
      }
    }
    this.#owed += bytes
    this.#creditConnection()
  }

  #creditConnection() {
    if (this.#owed < this.#options.sessionWindow / 8) return
    this.#write(windowUpdateFrame(0, this.#owed))
    this.#recvWindow += this.#owed
    this.#owed = 0
  }

  #frameStart(header: FrameHeader) {
    if (this.#block && header.type !== FrameType.CONTINUATION)
      throw protocolError('interrupted a header block')
    if (header.type !== FrameType.DATA) return
    if (header.stream === 0 || header.stream >= this.#nextId) throw protocolError('sent DATA on no call')
    if (header.length > this.#recvWindow)
      throw protocolError('overran its window', ErrorCode.FLOW_CONTROL_ERROR)
    this.#recvWindow -= header.length
    const stream = this.#streams.get(header.stream)
    if (!stream) return // a call ended or cancelled: its bytes are read past
    if (header.length > stream.recvWindow)
      throw protocolError('overran a call’s window', ErrorCode.FLOW_CONTROL_ERROR)
    if (!stream.gotHeaders) throw protocolError('sent DATA before its headers')
    stream.recvWindow -= header.length
  }

  #data(header: FrameHeader, bytes: Buffer) {
    const stream = this.#streams.get(header.stream)
    if (!stream) return this.#padding(header, bytes.length)
    const held = stream.sink.onData(bytes)
    // A sink that cancelled its call meanwhile holds nothing any more.
    const open = this.#streams.get(stream.id) === stream
    if (open) stream.held += held
    this.#credit(stream, open ? bytes.length - held : bytes.length)
  }

  /** DATA bytes nobody keeps (padding, a closed call's): the window reopens by as much at once. */
  #padding(header: FrameHeader, bytes: number) {
    const stream = this.#streams.get(header.stream)
    if (stream) return this.#credit(stream, bytes)
    this.#owed += bytes
    this.#creditConnection()
  }

  #frameEnd(header: FrameHeader, payload: Buffer) {
    switch (header.type) {
      case FrameType.DATA:
        if (header.flags & Flag.END_STREAM) this.#remoteEnd(header.stream)
        return
      case FrameType.HEADERS:
        return this.#onHeaders(header, payload)
      case FrameType.CONTINUATION:
        return this.#onContinuation(header, payload)
      case FrameType.SETTINGS:
        return this.#onSettings(header, payload)
      case FrameType.PING:
        if (header.stream !== 0 || payload.length !== 8) throw protocolError('sent a malformed PING')
        if (!(header.flags & Flag.ACK)) this.#write(frame(FrameType.PING, Flag.ACK, 0, payload))
        return
      case FrameType.GOAWAY:
        return this.#onGoaway(header, payload)
      case FrameType.RST_STREAM:
        return this.#onReset(header, payload)
      case FrameType.WINDOW_UPDATE:
        return this.#onWindowUpdate(header, payload)
      case FrameType.PUSH_PROMISE:
        throw protocolError('pushed a stream, which this side disabled')
    }
  }

  #onHeaders(header: FrameHeader, payload: Buffer) {
    if (header.stream === 0 || header.stream % 2 === 0 || header.stream >= this.#nextId)
      throw protocolError('sent HEADERS on no call')
    let start = 0
    let end = payload.length
    if (header.flags & Flag.PADDED) {
      if (payload.length < 1) throw protocolError('sent a malformed HEADERS frame')
      start = 1
      end -= payload[0] as number
    }
    if (header.flags & Flag.PRIORITY) start += 5
    if (start > end) throw protocolError('sent a malformed HEADERS frame')
    const fragment = payload.subarray(start, end)
    this.#block = {
      stream: header.stream,
      end: (header.flags & Flag.END_STREAM) !== 0,
      parts: [fragment],
      bytes: FRAME_HEADER_BYTES + fragment.length,
    }
    if (header.flags & Flag.END_HEADERS) this.#endBlock()
  }

  #onContinuation(header: FrameHeader, payload: Buffer) {
    const block = this.#block
    if (!block || block.stream !== header.stream) throw protocolError('sent CONTINUATION out of place')
    block.parts.push(payload)
    // Frame headers count too: empty CONTINUATIONs without end are no cheaper to hold than full ones.
    block.bytes += FRAME_HEADER_BYTES + payload.length
    if (block.bytes > MAX_CONTROL_BYTES) throw protocolError('sent a header block too large')
    if (header.flags & Flag.END_HEADERS) this.#endBlock()
  }

  #endBlock() {
    const block = this.#block as HeaderBlock
    this.#block = undefined
    // Decoded even for a call no longer open: the header table is the connection's.
    const fields = this.#decoder.decode(Buffer.concat(block.parts))
    const stream = this.#streams.get(block.stream)
    if (!stream) return
    const record: Record<string, string> = {}
    for (const [name, value] of fields) if (!(name in record)) record[name] = value
    if (!stream.gotHeaders) {
      if (record[':status']?.startsWith('1') && !block.end) return // informational: the response follows
      stream.gotHeaders = true
    } else if (!block.end) {
      throw protocolError('sent a second header block that does not end its call')
    }
    stream.sink.onHeaders(record, block.end)
    if (block.end) this.#remoteEnd(block.stream)
  }

  #remoteEnd(id: number) {
    const stream = this.#streams.get(id)
    if (!stream) return
    if (!stream.gotHeaders) throw protocolError('ended a call without its headers')
    this.#streams.delete(id)
    stream.sink.onEnd()
    this.#settle(stream)
  }

  #onSettings(header: FrameHeader, payload: Buffer) {
    if (header.stream !== 0) throw protocolError('sent SETTINGS on a call')
    if (header.flags & Flag.ACK) {
      if (payload.length !== 0)
        throw protocolError('sent a SETTINGS ACK with settings', ErrorCode.FRAME_SIZE_ERROR)
      return
    }
    if (payload.length % 6 !== 0) throw protocolError('sent malformed SETTINGS', ErrorCode.FRAME_SIZE_ERROR)
    for (let at = 0; at < payload.length; at += 6) {
      const id = payload.readUInt16BE(at)
      const value = payload.readUInt32BE(at + 2)
      if (id === Setting.INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW) throw protocolError('set a window too large', ErrorCode.FLOW_CONTROL_ERROR)
        const change = value - this.#peerInitialWindow
        this.#peerInitialWindow = value
        for (const stream of this.#streams.values()) {
          stream.sendWindow += change
          if (stream.sendWindow > MAX_WINDOW)
            throw protocolError('overflowed a window', ErrorCode.FLOW_CONTROL_ERROR)
        }
      } else if (id === Setting.MAX_FRAME_SIZE) {
        if (value < DEFAULT_FRAME_BYTES || value > MAX_FRAME_SIZE_SETTING)
          throw protocolError(`set a frame size of ${value}`)
        this.#peerMaxFrame = value
      } else if (id === Setting.MAX_CONCURRENT_STREAMS) {
        this.#maxStreams = value
      }
    }
    this.#write(frame(FrameType.SETTINGS, Flag.ACK, 0))
    for (const stream of this.#streams.values()) this.#sendBody(stream)
    this.#startQueued()
  }

  #onGoaway(header: FrameHeader, payload: Buffer) {
    if (header.stream !== 0 || payload.length < 8) throw protocolError('sent a malformed GOAWAY')
    const last = payload.readUInt32BE(0) & 0x7fffffff
    const code = payload.readUInt32BE(4)
    this.#closing = true
    const going = new Error(`the source is going away (${errorCodeName(code)})`)
    // For an error, nothing more is to be had of it: its calls fail now, not when it closes.
    if (code !== ErrorCode.NO_ERROR) return this.destroy(going)
    this.#failQueued(going)
    // Calls it never took may be asked again anywhere; those it took run to their end.
    for (const [id, stream] of this.#streams) {
      if (id <= last) continue
      this.#streams.delete(id)
      this.#owed += stream.held // what it held goes back to the connection's window, as in #settle
      stream.held = 0
      stream.sink.onError(going)
    }
    this.#creditConnection()
    if (this.#streams.size === 0) this.destroy(going)
  }

  #onReset(header: FrameHeader, payload: Buffer) {
    if (header.stream === 0 || payload.length !== 4) throw protocolError('sent a malformed RST_STREAM')
    if (header.stream >= this.#nextId) throw protocolError('reset a call never made')
    const stream = this.#streams.get(header.stream)
    if (!stream) return
    this.#streams.delete(header.stream)
    stream.sink.onError(new Error(`the source reset the call (${errorCodeName(payload.readUInt32BE(0))})`))
    this.#settle(stream)
  }

  #onWindowUpdate(header: FrameHeader, payload: Buffer) {
    if (payload.length !== 4)
      throw protocolError('sent a malformed WINDOW_UPDATE', ErrorCode.FRAME_SIZE_ERROR)
    const increment = payload.readUInt32BE(0) & 0x7fffffff
    if (increment === 0) throw protocolError('sent a WINDOW_UPDATE of 0')
    if (header.stream === 0) {
      this.#sendWindow += increment
      if (this.#sendWindow > MAX_WINDOW)
        throw protocolError('overflowed its window', ErrorCode.FLOW_CONTROL_ERROR)
      for (const stream of this.#streams.values()) this.#sendBody(stream)
      return
    }
    const stream = this.#streams.get(header.stream)
    if (!stream) return
    stream.sendWindow += increment
    if (stream.sendWindow > MAX_WINDOW)
      throw protocolError('overflowed a window', ErrorCode.FLOW_CONTROL_ERROR)
    this.#sendBody(stream)
  }
}

/** The code a GOAWAY gives for `err`, thrown while reading what the server sent. */
function errorCodeOf(err: Error): number {
  if (err instanceof H2ProtocolError) return err.code
  if (err instanceof HeaderBlockError) return ErrorCode.COMPRESSION_ERROR
  return ErrorCode.INTERNAL_ERROR
}

/** The event a socket still connecting will emit once it may be written to; none when it may be now. */
function connectingEvent(socket: Duplex): string | undefined {
  if (socket instanceof tls.TLSSocket) {
    const connecting =
      socket.connecting || (socket as unknown as { secureConnecting?: boolean }).secureConnecting
    return connecting ? 'secureConnect' : undefined
  }
  if (socket instanceof net.Socket && socket.connecting) return 'connect'
  return undefined
}
