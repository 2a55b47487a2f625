// Which reader the download serves first: the newest (a player's latest seek), whatever its place in
// the file. ffmpeg asks for an MP4's index at the end while its first request, from the start, stays
// open unread; lowest first kept that seek behind the first request's read-ahead.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { PartFile } from '../../peer/src/transfer/part-file.ts'
import { TransferReaders } from '../../peer/src/transfer/transfer-readers.ts'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

const CHUNK = 1024

/** A part file holding no chunk yet: readers wait on it, each at its position. */
function emptyPart(chunks: number): PartFile {
  const dir = mkdtempSync(join(tmpdir(), 'peerdir-readers-'))
  dirs.push(dir)
  const path = join(dir, 'part')
  writeFileSync(path, Buffer.alloc(chunks * CHUNK))
  return { path, target: { chunkSize: CHUNK }, has: () => false } as unknown as PartFile
}

/** Starts a reader of [start, end) and lets it reach its first wait. */
async function startReader(readers: TransferReaders, start: number, end: number, signal: AbortSignal) {
  const reading = readers.read(start, end, signal)
  void reading.next().catch(() => {})
  await new Promise((resolve) => setImmediate(resolve))
}

describe('TransferReaders', () => {
  it('puts the newest reader first, and the others after it by when they came', async () => {
    const readers = new TransferReaders()
    readers.opened(emptyPart(40))
    const stop = new AbortController()
    await startReader(readers, 0, 40 * CHUNK, stop.signal)
    expect(readers.positions()).toEqual([0])
    await startReader(readers, 39 * CHUNK, 40 * CHUNK, stop.signal)
    expect(readers.positions()).toEqual([39, 0])
    await startReader(readers, 20 * CHUNK, 21 * CHUNK, stop.signal)
    expect(readers.positions()).toEqual([20, 39, 0])
    stop.abort()
    readers.ended(new Error('stopped'))
    readers.close()
  })
})
