import type http2 from 'node:http2'
import { Code, ConnectError } from '@connectrpc/connect'
import type { ResponseParser } from './download-response-parser.ts'
import { copyInto, type SpareBuffers } from './spare-buffers.ts'

/** Landing buffers per call: one the consumer holds, one being filled. */
const BUFFERS = 2

/**
 * A Download stream's file bytes, copied as they arrive into two recycled buffers and handed on in
 * whole segments of `segmentBytes` (the last one shorter), counted from the start of the call; so a
 * caller that asks for whole chunks and names the chunk size gets each chunk as one buffer, valid
 * until it asks for the next.
 *
 * Why copy at once, inside the 'data' event: HTTP/2 delivers a fresh 64 KiB buffer per socket read.
 * Dropped in the same tick, each dies young and costs nothing; held across the consumer's awaits (its
 * disk write), many outlive a scavenge of the peer's 1 MiB young generation, are promoted, and then
 * only full collections free them: tens per GiB, the collector's work the downloader spent most on.
 * (An async iterator over the stream would also concatenate with read(): another copy and allocation.)
 * The buffers come from `buffers` and go back there when the call ends. When both are taken the
 * stream pauses, so HTTP/2 flow control holds the source back.
 */
export async function* segmentsOf(
  stream: http2.ClientHttp2Stream,
  parser: ResponseParser,
  options: { length: number; segmentBytes: number; buffers: SpareBuffers; onBytes?: (bytes: number) => void },
): AsyncGenerator<Buffer> {
  const { length, segmentBytes, buffers, onBytes } = options
  const mine: Buffer[] = []
  const ready: Buffer[] = [] // whole segments not yet taken, in order
  let held: Buffer | undefined // the segment the consumer has (its buffer is not filled meanwhile)
  let filling: Buffer | undefined
  let filled = 0
  let landed = 0 // bytes copied into segments
  let overflow: Buffer[] = [] // slices with no free buffer to land in (the stream is paused then)
  const slices: Buffer[] = []
  let done = false
  let failure: unknown
  let wake: (() => void) | undefined

  const segmentLength = () => Math.min(segmentBytes, length - landed + filled)
  const freeBuffer = (): Buffer | undefined => {
    const inUse = (b: Buffer) => b.buffer === held?.buffer || ready.some((r) => r.buffer === b.buffer)
    const free = mine.find((b) => !inUse(b))
    if (free || mine.length >= BUFFERS) return free
    const taken = buffers.take(segmentBytes)
    mine.push(taken)
    return taken
  }
  /** Copies `slice` into segments; false (and the rest kept in overflow) when no buffer is free. */
  const land = (slice: Buffer): boolean => {
    let at = 0
    while (at < slice.length) {
      if (landed >= length) {
        failure ??= new ConnectError('sent more bytes than asked for', Code.DataLoss)
        return true
      }
      if (!filling) {
        filling = freeBuffer()
        if (!filling) {
          overflow.push(at === 0 ? slice : slice.subarray(at))
          return false
        }
        filled = 0
      }
      const want = segmentLength()
      const take = Math.min(want - filled, slice.length - at)
      copyInto(filling, filled, slice.subarray(at, at + take))
      filled += take
      landed += take
      at += take
      if (filled === want) {
        ready.push(filling.subarray(0, want))
        filling = undefined
      }
    }
    return true
  }
  const landAll = (parts: Buffer[]) => {
    for (let i = 0; i < parts.length; i++) {
      if (!land(parts[i] as Buffer)) {
        overflow.push(...parts.slice(i + 1))
        return
      }
    }
  }
  const onData = (part: Buffer) => {
    slices.length = 0
    try {
      parser.feed(part, slices)
    } catch (err) {
      failure ??= err
    }
    if (onBytes && slices.length > 0) onBytes(slices.reduce((sum, slice) => sum + slice.length, 0))
    if (overflow.length > 0) overflow.push(...slices)
    else landAll(slices)
    slices.length = 0
    if (overflow.length > 0 || failure !== undefined) stream.pause()
    wake?.()
  }
  const onEnd = () => {
    done = true
    wake?.()
  }
  const onError = (err: unknown) => {
    failure ??= err
    wake?.()
  }
  const onClose = () => {
    if (!done) failure ??= new Error('the stream closed before its end')
    wake?.()
  }
  stream.on('data', onData).once('end', onEnd).once('error', onError).once('close', onClose)
  try {
    for (;;) {
      held = undefined // the consumer asked again: what it held may be overwritten
      if (overflow.length > 0) {
        const pending = overflow
        overflow = []
        landAll(pending)
        if (overflow.length === 0 && failure === undefined) stream.resume()
      }
      const next = ready.shift()
      if (next) {
        held = next
        yield next
        continue
      }
      if (failure !== undefined) throw failure
      if (done) {
        // A source that sent too little leaves a part segment: handed on, so the caller sees what came.
        if (filling && filled > 0) yield filling.subarray(0, filled)
        return
      }
      await new Promise<void>((resolve) => {
        wake = resolve
      })
      wake = undefined
    }
  } finally {
    stream.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose)
    // The consumer has let go of what it held: it asked again, or stopped asking.
    for (const buffer of mine) buffers.give(buffer)
  }
}
