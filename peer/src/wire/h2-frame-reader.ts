import {
  ErrorCode,
  Flag,
  FRAME_HEADER_BYTES,
  type FrameHeader,
  FrameType,
  protocolError,
  readFrameHeader,
} from './h2-frames.ts'

/** What the reader tells, frame by frame, in the order the bytes came. */
export interface FrameHandler {
  /** A frame's header is read (before any of its payload). */
  frameStart(header: FrameHeader): void
  /** Bytes of a DATA frame's data, valid only during the call (they are the socket's read buffer). */
  data(header: FrameHeader, bytes: Buffer): void
  /** Bytes of a DATA frame that carry no data (its pad length and padding): consumed at once. */
  padding(header: FrameHeader, bytes: number): void
  /** A frame is read whole: a control frame's payload (empty for DATA, PRIORITY and unknown types). */
  frameEnd(header: FrameHeader, payload: Buffer): void
}

/** Control frame payloads are held whole, up to this; DATA never is. */
export type FrameLimits = { maxFrameBytes: number; maxControlBytes: number }

const NO_PAYLOAD = Buffer.alloc(0)

/**
 * HTTP/2 frames from a byte stream as it is read: a frame header may span reads, a control frame's
 * payload is gathered (bounded), a DATA frame's data is handed on as it arrives, never gathered.
 * Throws an H2ProtocolError for a frame it will not read.
 */
export class H2FrameReader {
  readonly #handler: FrameHandler
  readonly #limits: FrameLimits
  readonly #head = Buffer.alloc(FRAME_HEADER_BYTES)
  #headFilled = 0
  #frame: FrameHeader | undefined
  #left = 0 // payload bytes of the frame not yet read
  #control: Buffer | undefined // a control frame's payload, filled as it arrives
  #controlFilled = 0
  #padLeft = -1 // DATA: -1 while its pad length is unread

  constructor(handler: FrameHandler, limits: FrameLimits) {
    this.#handler = handler
    this.#limits = limits
  }

  /** Reads `bytes` from `at` up to `end`; returns where it stopped (at the end of a frame or of the bytes). */
  read(bytes: Buffer, at: number, end: number): number {
    const frame = this.#frame
    if (!frame) {
      const take = Math.min(FRAME_HEADER_BYTES - this.#headFilled, end - at)
      bytes.copy(this.#head, this.#headFilled, at, at + take)
      this.#headFilled += take
      if (this.#headFilled === FRAME_HEADER_BYTES) {
        this.#headFilled = 0
        this.#start(readFrameHeader(this.#head))
      }
      return at + take
    }
    if (frame.type === FrameType.DATA) return this.#readData(frame, bytes, at, end)
    const take = Math.min(this.#left, end - at)
    if (this.#control) bytes.copy(this.#control, this.#controlFilled, at, at + take)
    this.#controlFilled += take
    this.#left -= take
    if (this.#left === 0) this.#end()
    return at + take
  }

  #start(header: FrameHeader) {
    if (header.length > this.#limits.maxFrameBytes)
      throw protocolError(`sent a ${header.length}-byte frame`, ErrorCode.FRAME_SIZE_ERROR)
    this.#frame = header
    this.#left = header.length
    this.#control = undefined // PRIORITY and unknown types are read past
    if (header.type === FrameType.DATA) {
      if (header.flags & Flag.PADDED && header.length === 0)
        throw protocolError('sent a padded DATA frame of no length')
      this.#padLeft = header.flags & Flag.PADDED ? -1 : 0
    } else if (isKnownControl(header.type)) {
      if (header.length > this.#limits.maxControlBytes)
        throw protocolError(`sent a ${header.length}-byte control frame`)
      this.#control = Buffer.allocUnsafe(header.length)
      this.#controlFilled = 0
    }
    this.#handler.frameStart(header)
    if (header.length === 0) this.#end()
  }

  #readData(header: FrameHeader, bytes: Buffer, at: number, end: number): number {
    let next = at
    if (this.#padLeft < 0) {
      this.#padLeft = bytes[next++] as number
      this.#left--
      if (this.#padLeft > this.#left) throw protocolError('padded DATA beyond its frame')
      this.#handler.padding(header, 1)
    }
    const take = Math.min(this.#left - this.#padLeft, end - next)
    if (take > 0) {
      this.#handler.data(header, bytes.subarray(next, next + take))
      next += take
      this.#left -= take
    }
    if (this.#left === this.#padLeft && this.#padLeft > 0) {
      const pad = Math.min(this.#padLeft, end - next)
      next += pad
      this.#left -= pad
      this.#padLeft -= pad
      this.#handler.padding(header, pad)
    }
    if (this.#left === 0) this.#end()
    return next
  }

  #end() {
    const header = this.#frame as FrameHeader
    const payload = this.#control ?? NO_PAYLOAD
    this.#frame = undefined
    this.#control = undefined
    this.#handler.frameEnd(header, payload)
  }
}

const isKnownControl = (type: number) =>
  type === FrameType.HEADERS ||
  type === FrameType.CONTINUATION ||
  type === FrameType.SETTINGS ||
  type === FrameType.PING ||
  type === FrameType.GOAWAY ||
  type === FrameType.RST_STREAM ||
  type === FrameType.WINDOW_UPDATE ||
  type === FrameType.PUSH_PROMISE
