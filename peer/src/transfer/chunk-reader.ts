import { Code, ConnectError } from '@connectrpc/connect'

/**
 * What a stream must bring within each stall time to count as alive: about 12 KiB/s for 20 s. Less
 * than a chunk, so a source capped at a low rate and serving several calls in turn is kept; more than a
 * byte, so a source that trickles (the bytes of a chunk are checked only once it is whole) cannot hold
 * a request, and the download waiting on it, for days.
 */
export const PROGRESS_BYTES = 256 * 1024
/** The stall time a download gives its sources, unless told otherwise. */
export const STALL_MS = 20_000

type Options = {
  /**
   * Opens the stream of the run's bytes; the signal aborts it (a stall or the caller). The stream calls
   * `arrived` with the count whenever bytes arrive that it has not handed on yet (it hands on whole chunks).
   */
  open: (signal: AbortSignal, arrived: (bytes: number) => void) => AsyncIterable<Uint8Array>
  /** The run's chunks, in order, with their lengths. */
  chunks: { index: number; length: number }[]
  /** A stream that brings less than PROGRESS_BYTES in this long is abandoned. */
  stallMs: number
  signal?: AbortSignal
}

/**
 * Cuts one stream of consecutive chunks into chunks and yields each as soon as its bytes are complete,
 * so memory holds one chunk per request: the yielded buffer (the source's own when it hands on whole
 * chunks, else one reused here) is valid only until the consumer asks for the next (by then it has
 * verified and written it). More or fewer bytes than asked for fail with DataLoss; a stall fails with a
 * message that says so: a stall is `stallMs` in which less than PROGRESS_BYTES came, not a chunk (a
 * rate-capped source sending several runs at once may take longer than that for each chunk).
 */
export async function* readChunks(options: Options): AsyncGenerator<{ index: number; data: Buffer }> {
  const { chunks, stallMs } = options
  const stall = new AbortController()
  const timer = setTimeout(() => stall.abort(), stallMs)
  const signal = options.signal ? AbortSignal.any([options.signal, stall.signal]) : stall.signal
  // Made only when a chunk arrives in pieces: a source that hands on whole chunks is read in place.
  let storage: Buffer | undefined
  const chunkBuffer = (length: number) => {
    storage ??= Buffer.allocUnsafe(Math.max(...chunks.map((c) => c.length)))
    return storage.subarray(0, length)
  }
  let at = 0
  let filled = 0
  let sinceRefresh = 0
  const progressed = () => {
    sinceRefresh = 0
    timer.refresh()
  }
  const arrived = (bytes: number) => {
    sinceRefresh += bytes
    if (sinceRefresh >= PROGRESS_BYTES) progressed()
  }
  try {
    for await (const part of options.open(signal, arrived)) {
      let data = part
      while (data.length > 0) {
        const chunk = chunks[at]
        if (!chunk) throw new ConnectError('sent more bytes than asked for', Code.DataLoss)
        if (filled === 0 && data.length >= chunk.length) {
          // Valid until the next is asked for, as `part` is: the source is not asked before then.
          yield {
            index: chunk.index,
            data: Buffer.from(data.buffer, data.byteOffset, chunk.length),
          }
          at++
          data = data.subarray(chunk.length)
          continue
        }
        const buffer = chunkBuffer(chunk.length)
        const take = Math.min(data.length, chunk.length - filled)
        buffer.set(data.subarray(0, take), filled)
        filled += take
        data = data.subarray(take)
        if (filled === chunk.length) {
          yield { index: chunk.index, data: buffer }
          at++
          filled = 0
        }
      }
      progressed()
    }
  } catch (err) {
    if (stall.signal.aborted && !options.signal?.aborted) throw new Error(`stalled for ${stallMs / 1000} s`)
    throw err
  } finally {
    clearTimeout(timer)
  }
  const short = chunks[at]
  if (short) throw new ConnectError(`sent too few bytes for chunk ${short.index}`, Code.DataLoss)
}
