import { Code, ConnectError } from '@connectrpc/connect'
import { ENVELOPE_BYTES } from './grpc-wire.ts'

/** The largest message a source may send (its pieces are 512 KiB), as Connect's readMaxBytes. */
const MAX_MESSAGE_BYTES = 8 * 1024 * 1024

/**
 * Reads DownloadResponse messages from the gRPC byte stream as it arrives: envelope, then protobuf
 * fields, where field 2 (`data`) is handed out in slices without being assembled and field 1
 * (`offset`) must say where those bytes belong: right after the previous message's.
 */
export class ResponseParser {
  position: number
  #state: 'envelope' | 'tag' | 'varint' | 'data' | 'skip' = 'envelope'
  readonly #head = Buffer.alloc(ENVELOPE_BYTES)
  #headFilled = 0
  /** Bytes of the current message not yet read. */
  #messageLeft = 0
  #varint = 0
  #varintShift = 0
  #field = 0
  #wireType = 0
  #dataLeft = 0
  #skipLeft = 0
  #messageStart = 0
  #offset: number | undefined

  constructor(offset: number) {
    this.position = offset
  }

  /** Appends the file bytes in `bytes` to `slices` (views of it, not copies); returns how many. */
  feed(bytes: Buffer, slices: Buffer[]): number {
    let sliced = 0
    let at = 0
    while (at < bytes.length) {
      if (this.#state === 'envelope') {
        const take = Math.min(ENVELOPE_BYTES - this.#headFilled, bytes.length - at)
        bytes.copy(this.#head, this.#headFilled, at, at + take)
        this.#headFilled += take
        at += take
        if (this.#headFilled === ENVELOPE_BYTES) this.#startMessage()
        continue
      }
      if (this.#state === 'data') {
        const take = Math.min(this.#dataLeft, bytes.length - at)
        slices.push(bytes.subarray(at, at + take))
        sliced += take
        at += take
        this.#dataLeft -= take
        this.#messageLeft -= take
        this.position += take
        if (this.#dataLeft === 0) this.#nextField()
        continue
      }
      if (this.#state === 'skip') {
        const take = Math.min(this.#skipLeft, bytes.length - at)
        at += take
        this.#skipLeft -= take
        this.#messageLeft -= take
        if (this.#skipLeft === 0) this.#nextField()
        continue
      }
      // 'tag' or 'varint': one byte at a time; these are a handful per 512 KiB message.
      const byte = bytes[at++] as number
      this.#messageLeft--
      if (this.#messageLeft < 0) throw dataLoss('sent a message longer than its envelope')
      this.#varint += (byte & 0x7f) * 2 ** this.#varintShift
      this.#varintShift += 7
      if (this.#varintShift > 63) throw dataLoss('sent a malformed varint')
      if (byte & 0x80) continue
      const value = this.#varint
      this.#varint = 0
      this.#varintShift = 0
      if (this.#state === 'tag') this.#onTag(value)
      else this.#onValue(value)
    }
    return sliced
  }

  /** The stream ended: it must not stop inside a message. */
  end() {
    if (this.#state !== 'envelope' || this.#headFilled !== 0) throw dataLoss('ended inside a message')
  }

  #startMessage() {
    this.#headFilled = 0
    if (this.#head[0] !== 0)
      throw new ConnectError('sent a compressed message; none was asked for', Code.Internal)
    this.#messageLeft = this.#head.readUInt32BE(1)
    if (this.#messageLeft > MAX_MESSAGE_BYTES) throw dataLoss(`sent a ${this.#messageLeft}-byte message`)
    this.#messageStart = this.position
    this.#offset = undefined
    this.#nextField()
  }

  #nextField() {
    if (this.#messageLeft > 0) {
      this.#state = 'tag'
      return
    }
    // proto3 leaves out an offset of 0; bytes must land exactly where the message says.
    if ((this.#offset ?? 0) !== this.#messageStart) throw dataLoss('sent bytes out of order')
    this.#state = 'envelope'
  }

  #onTag(tag: number) {
    this.#field = Math.floor(tag / 8)
    this.#wireType = tag % 8
    if (this.#wireType === 0 || this.#wireType === 2) {
      this.#state = 'varint'
      return
    }
    const fixed = this.#wireType === 1 ? 8 : this.#wireType === 5 ? 4 : -1
    if (fixed < 0) throw dataLoss(`sent wire type ${this.#wireType}`)
    this.#skip(fixed)
  }

  #onValue(value: number) {
    if (this.#wireType === 0) {
      if (this.#field === 1) this.#offset = value
      this.#nextField()
      return
    }
    if (value > this.#messageLeft) throw dataLoss('sent a field longer than its message')
    if (this.#field !== 2) return this.#skip(value)
    if (this.#offset !== undefined && this.#offset !== this.position)
      throw dataLoss('sent bytes out of order')
    this.#dataLeft = value
    this.#state = 'data'
    if (value === 0) this.#nextField()
  }

  #skip(bytes: number) {
    if (bytes > this.#messageLeft) throw dataLoss('sent a field longer than its message')
    this.#skipLeft = bytes
    this.#state = 'skip'
    if (bytes === 0) this.#nextField()
  }
}

const dataLoss = (why: string) => new ConnectError(why, Code.DataLoss)
