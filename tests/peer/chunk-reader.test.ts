import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { PROGRESS_BYTES, readChunks } from '../../peer/src/transfer/chunk-reader.ts'

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

/** A run of two 8-byte chunks whose stream reports `perReport` bytes every 60 ms, ten times per chunk. */
function reporting(perReport: number) {
  return indexesOf(
    readChunks({
      open: async function* (signal, arrived) {
        for (const index of [0, 1]) {
          for (let i = 0; i < 10; i++) {
            await wait(60, signal)
            arrived(perReport)
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
}

describe('readChunks', () => {
  it('keeps a stream whose bytes come slower than a chunk per stall time, and gives up a silent one and a trickling one', async () => {
    // A chunk is whole after 600 ms, six stall times; each 60 ms brings PROGRESS_BYTES.
    const slow = reporting(PROGRESS_BYTES)
    // Never silent for 100 ms, but a byte at a time: it would hold the run for as long as it liked.
    const trickling = reporting(1)
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
    const outcomes = [
      expect(slow).resolves.toEqual([0, 1]),
      expect(silent).rejects.toThrow('stalled for 0.1 s'),
      expect(trickling).rejects.toThrow('stalled for 0.1 s'),
    ]
    await vi.advanceTimersByTimeAsync(2000)
    await Promise.all(outcomes)
  })
})
