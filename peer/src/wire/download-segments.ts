import { Code, ConnectError } from '@connectrpc/connect'
import type { ResponseParser } from './download-response-parser.ts'
import type { H2Stream, StreamSink } from './h2-session.ts'
import { copyInto, type SpareBuffers } from './spare-buffers.ts'

/** Landing buffers per call: one the consumer holds, one being filled. */
const BUFFERS = 2

type Resolvers = { resolve: (fields: Record<string, string>) => void; reject: (err: unknown) => void }

export type SegmentOptions = {
  length: number
  segmentBytes: number
  buffers: SpareBuffers
  onBytes?: (bytes: number) => void
}

/**
 * One Download call's answer, as its HTTP/2 session hands it on (h2-session.ts): the response headers,
 * then the file bytes copied, the moment they are read, into two recycled buffers and handed on in
 * whole segments of `segmentBytes` (the last one shorter), counted from the start of the call; so a
 * caller that asks for whole chunks and names the chunk size gets each chunk as one buffer, valid until
 * it asks for the next. The buffers come from `buffers` and go back there when the call ends.
 *
 * When both buffers are taken, what arrives is copied aside and the call's window stays closed by as
 * much, so flow control holds the source back and what is set aside stays under the call's window.
 */
export class SegmentLanding implements StreamSink {
  /** The call's stream, once started: told when bytes set aside are consumed. */
  stream: H2Stream | undefined
  /** The response headers; rejects when the call fails before them. */
  readonly response: Promise<Record<string, string>>
  /** The trailers (or the trailers-only response), once they arrive. */
  trailers: Record<string, string> | undefined
  readonly #parser: ResponseParser
  readonly #options: SegmentOptions
  readonly #respond: Resolvers
  #gotResponse = false
  readonly #mine: Buffer[] = []
  readonly #ready: Buffer[] = [] // whole segments not yet taken, in order
  #held: Buffer | undefined // the segment the consumer has (its buffer is not filled meanwhile)
  #filling: Buffer | undefined
  #filled = 0
  #landed = 0 // file bytes copied into segments
  readonly #overflow: Buffer[] = [] // file bytes copied aside: no buffer was free
  readonly #slices: Buffer[] = []
  #done = false
  #failure: unknown
  #wake: (() => void) | undefined

  constructor(parser: ResponseParser, options: SegmentOptions) {
    this.#parser = parser
    this.#options = options
    let respond: Resolvers = { resolve: () => {}, reject: () => {} }
    this.response = new Promise((resolve, reject) => {
      respond = { resolve, reject }
    })
    this.#respond = respond
    this.response.catch(() => {}) // the call's failure is reported by whoever awaits it, or by segments()
  }

  /** The whole answer (its trailers) arrived. */
  get answered(): boolean {
    return this.trailers !== undefined
  }

  onHeaders(fields: Record<string, string>, end: boolean) {
    if (!this.#gotResponse) {
      this.#gotResponse = true
      this.#respond.resolve(fields)
    }
    if (end) this.trailers = fields
  }

  onData(bytes: Buffer): number {
    if (this.#failure !== undefined) return 0 // the call is failing: nothing more is kept
    this.#slices.length = 0
    let parsed = 0
    try {
      parsed = this.#parser.feed(bytes, this.#slices)
    } catch (err) {
      this.#fail(err)
      return 0
    }
    if (parsed > 0) this.#options.onBytes?.(parsed)
    let held = 0
    for (const slice of this.#slices) {
      const rest = this.#overflow.length > 0 ? slice : this.#land(slice)
      if (rest) {
        this.#overflow.push(Buffer.from(rest)) // a copy: `bytes` is the socket's read buffer
        held += rest.length
      }
    }
    this.#slices.length = 0
    this.#wake?.()
    return held
  }

  onEnd() {
    this.#done = true
    this.#wake?.()
  }

  onError(err: Error) {
    this.#fail(err)
  }

  /** The segments, in order, each valid until the next is asked for. */
  async *segments(): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        this.#held = undefined // the consumer asked again: what it held may be overwritten
        if (this.#overflow.length > 0) this.#landOverflow()
        const next = this.#ready.shift()
        if (next) {
          this.#held = next
          yield next
          continue
        }
        if (this.#failure !== undefined) throw this.#failure
        if (this.#done && this.#overflow.length === 0) {
          // A source that sent too little leaves a part segment: handed on, so the caller sees what came.
          if (this.#filling && this.#filled > 0) yield this.#filling.subarray(0, this.#filled)
          return
        }
        await new Promise<void>((resolve) => {
          this.#wake = resolve
        })
        this.#wake = undefined
      }
    } finally {
      // The consumer has let go of what it held: it asked again, or stopped asking.
      for (const buffer of this.#mine) this.#options.buffers.give(buffer)
      this.#mine.length = 0
    }
  }

  #fail(err: unknown) {
    this.#failure ??= err
    this.#respond.reject(err)
    this.#wake?.()
  }

  /** Lands what was set aside, in order, as far as buffers allow; the call's window reopens by as much. */
  #landOverflow() {
    let consumed = 0
    while (this.#overflow.length > 0) {
      const piece = this.#overflow[0] as Buffer
      const rest = this.#land(piece)
      consumed += piece.length - (rest?.length ?? 0)
      if (rest) {
        this.#overflow[0] = rest
        break
      }
      this.#overflow.shift()
    }
    if (consumed > 0) this.stream?.release(consumed)
  }

  /** Copies file bytes into segments; returns what did not fit (no buffer free), if any. */
  #land(slice: Buffer): Buffer | undefined {
    const { length, segmentBytes } = this.#options
    let at = 0
    while (at < slice.length) {
      if (this.#landed >= length) {
        this.#fail(new ConnectError('sent more bytes than asked for', Code.DataLoss))
        return undefined
      }
      if (!this.#filling) {
        this.#filling = this.#freeBuffer()
        if (!this.#filling) return slice.subarray(at)
        this.#filled = 0
      }
      const want = Math.min(segmentBytes, length - this.#landed + this.#filled)
      const take = Math.min(want - this.#filled, slice.length - at)
      copyInto(this.#filling, this.#filled, slice.subarray(at, at + take))
      this.#filled += take
      this.#landed += take
      at += take
      if (this.#filled === want) {
        this.#ready.push(this.#filling.subarray(0, want))
        this.#filling = undefined
      }
    }
    return undefined
  }

  #freeBuffer(): Buffer | undefined {
    const inUse = (b: Buffer) =>
      b.buffer === this.#held?.buffer || this.#ready.some((r) => r.buffer === b.buffer)
    const free = this.#mine.find((b) => !inUse(b))
    if (free || this.#mine.length >= BUFFERS) return free
    const taken = this.#options.buffers.take(this.#options.segmentBytes)
    this.#mine.push(taken)
    return taken
  }
}
