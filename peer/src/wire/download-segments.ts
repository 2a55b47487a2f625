import { Code, ConnectError } from '@connectrpc/connect'
import { resolvers } from '../resolvers.ts'
import type { ResponseParser } from './download-response-parser.ts'
import type { H2Stream, StreamSink } from './h2-session.ts'
import { copyInto, type SpareBuffers } from './spare-buffers.ts'

export type SegmentOptions = {
  length: number
  segmentBytes: number
  buffers: SpareBuffers
  onBytes?: (bytes: number) => void
}

/**
 * One Download call's answer, as its HTTP/2 session hands it on (h2-session.ts): the response headers,
 * then the file bytes copied, the moment they are read, into recycled buffers and handed on in whole
 * segments of `segmentBytes` (the last one shorter), counted from the start of the call; so a caller
 * that asks for whole chunks and names the chunk size gets each chunk as one buffer, valid until it
 * asks for the next. The buffers come from `buffers` and go back there when the call ends.
 *
 * The call's window reopens only as the caller takes segments and lets them go, never as bytes land:
 * so the source runs ahead of the caller by at most the window, and that bounds the buffers a call
 * fills (its window over the segment size, plus the one held and the one filling). A byte is never
 * copied twice, however far the network runs ahead of the disk.
 */
export class SegmentLanding implements StreamSink {
  /** The call's stream, once started: told when the caller lets a segment go. */
  stream: H2Stream | undefined
  /** The response headers; rejects when the call fails before them. */
  readonly response: Promise<Record<string, string>>
  /** The trailers (or the trailers-only response), once they arrive. */
  trailers: Record<string, string> | undefined
  readonly #parser: ResponseParser
  readonly #options: SegmentOptions
  readonly #respond = resolvers<Record<string, string>>()
  readonly #mine: Buffer[] = []
  readonly #ready: Buffer[] = [] // whole segments not yet taken, in order
  #held: Buffer | undefined // the segment the consumer has (its buffer is not filled meanwhile)
  #filling: Buffer | undefined
  #filled = 0
  #landed = 0 // file bytes copied into segments
  readonly #slices: Buffer[] = []
  #done = false
  #failure: unknown
  #wake: (() => void) | undefined

  constructor(parser: ResponseParser, options: SegmentOptions) {
    this.#parser = parser
    this.#options = options
    this.response = this.#respond.promise
    this.response.catch(() => {}) // the call's failure is reported by whoever awaits it, or by segments()
  }

  /** The whole answer (its trailers) arrived. */
  get answered(): boolean {
    return this.trailers !== undefined
  }

  onHeaders(fields: Record<string, string>, end: boolean) {
    this.#respond.resolve(fields) // the first block is the response; a settled promise ignores the rest
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
    for (const slice of this.#slices) this.#land(slice)
    this.#slices.length = 0
    this.#wake?.()
    return parsed // consumed when the caller lets their segment go (segments())
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
        if (this.#held) {
          // The consumer asked again: what it held may be overwritten, and the source send as much more.
          this.stream?.release(this.#held.length)
          this.#held = undefined
        }
        const next = this.#ready.shift()
        if (next) {
          this.#held = next
          yield next
          continue
        }
        if (this.#failure !== undefined) throw this.#failure
        if (this.#done) {
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
      this.close() // the consumer has let go of what it held: it asked again, or stopped asking
    }
  }

  /** Gives the call's buffers back, and takes no more bytes: the call is over, read or not. */
  close() {
    this.#fail(new Error('the call is over'))
    for (const buffer of this.#mine) this.#options.buffers.give(buffer)
    this.#mine.length = 0
  }

  #fail(err: unknown) {
    this.#failure ??= err
    this.#respond.reject(err)
    this.#wake?.()
  }

  /** Copies file bytes into segments. */
  #land(slice: Buffer) {
    const { length, segmentBytes } = this.#options
    let at = 0
    while (at < slice.length) {
      if (this.#landed >= length) {
        this.#fail(new ConnectError('sent more bytes than asked for', Code.DataLoss))
        return
      }
      if (!this.#filling) {
        this.#filling = this.#freeBuffer()
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
  }

  /** One of this call's buffers nobody uses, or one more (the window bounds how many). */
  #freeBuffer(): Buffer {
    const inUse = (b: Buffer) =>
      b.buffer === this.#held?.buffer || this.#ready.some((r) => r.buffer === b.buffer)
    const free = this.#mine.find((b) => !inUse(b))
    if (free) return free
    const taken = this.#options.buffers.take(this.#options.segmentBytes)
    this.#mine.push(taken)
    return taken
  }
}
