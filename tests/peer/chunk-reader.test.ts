import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { readChunks } from '../../peer/src/transfer/chunk-reader.ts'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

/** A wait on the (fake) clock that an abort ends with the signal's reason. */
function wait(ms: number, signal: AbortSignal) {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => {
      clearTimeout(timer)
      reject(signal.reason)
    })
  })
}

async function indexesOf(reading: AsyncGenerator<{ index: number }>) {
  const indexes: number[] = []
  for await (const { index } of reading) indexes.push(index)
  return indexes
}

describe('readChunks', () => {
  it('keeps a stream whose bytes trickle in slower than a chunk per stall time, and gives up a silent one', async () => {
    // Bytes arrive every 60 ms, a chunk is whole after 600 ms: slower than the 100 ms stall time per
    // chunk, never silent for it.
    const trickling = indexesOf(
      readChunks({
        open: async function* (signal, alive) {
          for (const index of [0, 1]) {
            for (let i = 0; i < 10; i++) {
              await wait(60, signal)
              alive()
            }
            yield new Uint8Array(8).fill(index)
          }
        },
        chunks: [
          { index: 0, length: 8 },
          { index: 1, length: 8 },
        ],
        stallMs: 100,
      }),
    )
    const silent = indexesOf(
      readChunks({
        open: async function* (signal) {
          await wait(600, signal)
          yield new Uint8Array(8)
        },
        chunks: [{ index: 0, length: 8 }],
        stallMs: 100,
      }),
    )
    const failed = expect(silent).rejects.toThrow('stalled for 0.1 s')
    await vi.advanceTimersByTimeAsync(2000)
    await failed
    expect(await trickling).toEqual([0, 1])
  })
})
