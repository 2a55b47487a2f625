import { Code, ConnectError } from '@connectrpc/connect'

type Options = {
  /** Opens the stream of the run's bytes; the signal aborts it (a stall or the caller). */
  open: (signal: AbortSignal) => AsyncIterable<Uint8Array>
  /** The run's chunks, in order, with their lengths. */
  chunks: { index: number; length: number }[]
  /** A stream that brings nothing for this long is abandoned. */
  stallMs: number
  signal?: AbortSignal
}

/**
 * Cuts one stream of consecutive chunks into chunks and yields each as soon as its bytes are complete,
 * so memory holds one chunk per request: the yielded buffer is reused, valid only until the consumer
 * asks for the next (by then it has verified and written it). More or fewer bytes than asked for fail
 * with DataLoss; a stall fails with a message that says so.
 */
export async function* readChunks(
  options: Options,
): AsyncGenerator<{ index: number; data: Buffer<ArrayBuffer> }> {
  const { chunks, stallMs } = options
  const stall = new AbortController()
  let timer = setTimeout(() => stall.abort(), stallMs)
  const signal = options.signal ? AbortSignal.any([options.signal, stall.signal]) : stall.signal
  const storage = Buffer.allocUnsafe(Math.max(...chunks.map((c) => c.length)))
  let at = 0
  let buffer = storage.subarray(0, chunks[0]?.length ?? 0)
  let filled = 0
  try {
    for await (const part of options.open(signal)) {
      let data = part
      while (data.length > 0) {
        const chunk = chunks[at]
        if (!chunk) throw new ConnectError('sent more bytes than asked for', Code.DataLoss)
        const take = Math.min(data.length, buffer.length - filled)
        buffer.set(data.subarray(0, take), filled)
        filled += take
        data = data.subarray(take)
        if (filled === buffer.length) {
          yield { index: chunk.index, data: buffer }
          at++
          filled = 0
          buffer = storage.subarray(0, chunks[at]?.length ?? 0)
        }
      }
      clearTimeout(timer)
      timer = setTimeout(() => stall.abort(), stallMs)
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
