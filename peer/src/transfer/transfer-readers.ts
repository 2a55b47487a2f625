import { type FileHandle, open } from 'node:fs/promises'
import { READ_AHEAD_CHUNKS } from './chunk-scheduler.ts'
import type { PartFile } from './part-file.ts'

/** Bytes a reader is handed at most at once, whatever the chunk size. */
const READ_SLICE = 1024 * 1024
/** Seconds of reading at readers' rate that the chunks fetched ahead of them cover (one seek's worth). */
const READ_AHEAD_SECONDS = 4
/** The most chunks fetched ahead of a reader, whatever its rate: it is what a seek throws away. */
const MAX_READ_AHEAD_CHUNKS = 64
/** Readers' rate is sampled over at least this long, each sample weighing half. */
const RATE_SAMPLE_MS = 1000

type OpenPart = { part: PartFile; handle: Promise<FileHandle>; attempt: number }

/**
 * The readers of one transfer (`peer cat`, the gateway's Range requests): each reads verified bytes in
 * order as their chunks land, and where each one is steers the download. A reader never sees a byte
 * before its chunk matched the manifest. Bytes come from a handle opened on the part file when it opens,
 * which stays good when the finished file is moved into place or removed, until `close`.
 *
 * Readers' positions: each reader's position is the chunk it waits for (or reads) now; `positions()`
 * is the set of them, the newest reader's first, as the ChunkScheduler takes them (`readPositions`,
 * most urgent first: what readers wait for goes out before the rest of the file), and `onMove` tells
 * the download when one moved so it plans again at once. The newest reader is the player's latest
 * seek: ffmpeg keeps its first request open unread while it asks for the index at the end, and that
 * first reader runs on into the socket's buffers, so lowest first kept the seek waiting behind its
 * read-ahead (6.5 s for the last 14 KB of an MP4 from a 4 MiB/s source).
 *
 * It does not know who holds the transfer open, nor whether its file is kept: the daemon does.
 */
export class TransferReaders {
  #open: OpenPart | undefined
  #attempts = 0
  #ended: { error?: unknown } | undefined
  /** Each reader's position: the chunk it waits for or reads now. */
  readonly #positions = new Map<symbol, number>()
  /** The byte each reader waits for before the part file opens (its chunk is not known until then). */
  readonly #early = new Map<symbol, number>()
  /** `#positions` as the scheduler asks for them, on every plan: made again only when one moves. */
  #urgentPositions: readonly number[] = []
  readonly #moveListeners = new Set<() => void>()
  readonly #waiting = new Set<() => void>()
  #readerCame: (() => void) | undefined
  #readers = 0
  /** Bytes per second readers take, smoothed; and the sample being counted. */
  #rate = 0
  #sampleBytes = 0
  #sampleStart = performance.now()

  /** Resolves once a reader has started (or had), or after `timeoutMs`. */
  readerAttached(timeoutMs: number): Promise<void> {
    if (this.#readers > 0) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs)
      this.#readerCame = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }

  /** The part file is open (again, for another attempt): which chunks it holds, where it is. */
  opened(part: PartFile) {
    void this.#open?.handle.then((handle) => handle.close()).catch(() => {})
    this.#open = { part, handle: open(part.path, 'r'), attempt: ++this.#attempts }
    this.#open.handle.catch(() => {}) // a reader that needs it sees the error
    // Readers that came first steer the download's first plan, made before they wake: else that plan
    // hands the whole file out in long background runs and the reader's chunks wait behind them.
    for (const [me, offset] of this.#early) this.#setPosition(me, Math.floor(offset / part.target.chunkSize))
    this.#early.clear()
    this.#wake()
  }

  /** A verified chunk is on disk: readers waiting for it go on. */
  written() {
    this.#wake()
  }

  /** The chunks readers wait for, the newest reader's first (the ChunkScheduler's `readPositions`). */
  positions = (): readonly number[] => this.#urgentPositions

  /**
   * How many chunks from a read position on go before the rest of the file: READ_AHEAD_SECONDS of
   * reading at the rate readers take bytes (a player at 3 MiB/s gets 12 MiB ahead), within bounds.
   */
  readAheadChunks = (): number => {
    const chunkSize = this.#open?.part.target.chunkSize
    if (!chunkSize) return READ_AHEAD_CHUNKS
    const chunks = Math.ceil((this.#rate * READ_AHEAD_SECONDS) / chunkSize)
    return Math.min(MAX_READ_AHEAD_CHUNKS, Math.max(READ_AHEAD_CHUNKS, chunks))
  }

  /** Bytes a second readers take, over the last seconds (0 until a second of reading is known). */
  rate = (): number => this.#rate

  #counted(bytes: number) {
    this.#sampleBytes += bytes
    const now = performance.now()
    if (now - this.#sampleStart < RATE_SAMPLE_MS) return
    const sample = (this.#sampleBytes * 1000) / (now - this.#sampleStart)
    this.#rate = this.#rate === 0 ? sample : (this.#rate + sample) / 2
    this.#sampleBytes = 0
    this.#sampleStart = now
  }

  /** Calls `listener` when a reader's position moves (a seek); returns how to stop. */
  onMove(listener: () => void): () => void {
    this.#moveListeners.add(listener)
    return () => this.#moveListeners.delete(listener)
  }

  /** The transfer ended: readers of chunks that never came get `error`; with none, all are there. */
  ended(error?: unknown) {
    this.#ended = { error }
    this.#wake()
  }

  /** Nobody will read any more: the handle on the file is let go (once the transfer ended). */
  close() {
    if (!this.#ended || !this.#open) return
    const { handle } = this.#open
    this.#open = undefined
    void handle.then((h) => h.close()).catch(() => {})
  }

  /**
   * The verified bytes of [start, end) in order, each slice as soon as its chunk is on disk. Fails if the
   * transfer fails first, or if the attempt it read from was given up for another (its manifest was
   * false: what was read cannot be vouched for).
   */
  async *read(start: number, end: number, signal: AbortSignal): AsyncGenerator<Buffer> {
    const me = Symbol('reader')
    this.#readers++
    this.#readerCame?.()
    let attempt: number | undefined
    try {
      for (let offset = start; offset < end; ) {
        const open = await this.#holding(offset, me, signal)
        if (attempt !== undefined && open.attempt !== attempt) {
          throw new Error(
            'the download started over with other metadata after part of it was read; what was read cannot be vouched for',
          )
        }
        attempt = open.attempt
        const { chunkSize } = open.part.target
        const length =
          Math.min(end, (Math.floor(offset / chunkSize) + 1) * chunkSize, offset + READ_SLICE) - offset
        const buffer = Buffer.allocUnsafe(length)
        const handle = await open.handle
        for (let filled = 0; filled < length; ) {
          const { bytesRead } = await handle.read(buffer, filled, length - filled, offset + filled)
          if (bytesRead === 0) throw new Error('the part file is shorter than its verified chunks')
          filled += bytesRead
        }
        this.#counted(length)
        yield buffer
        offset += length
      }
    } finally {
      this.#early.delete(me)
      this.#setPosition(me, undefined)
    }
  }

  #setPosition(me: symbol, chunk: number | undefined) {
    if (chunk === undefined) this.#positions.delete(me)
    else this.#positions.set(me, chunk)
    // A Map keeps the order readers came in (a move keeps a reader's place): newest first.
    this.#urgentPositions = [...new Set([...this.#positions.values()].reverse())]
  }

  /** The open part once it holds the chunk of `offset`, steering the download there meanwhile. */
  async #holding(offset: number, me: symbol, signal: AbortSignal): Promise<OpenPart> {
    for (;;) {
      signal.throwIfAborted()
      const open = this.#open
      const chunk = open ? Math.floor(offset / open.part.target.chunkSize) : 0
      if (open) {
        const moved = this.#positions.get(me) !== chunk
        if (moved) this.#setPosition(me, chunk)
        if (open.part.has(chunk)) return open
        if (moved) for (const listener of this.#moveListeners) listener()
      } else this.#early.set(me, offset)
      if (this.#ended) {
        if (this.#ended.error !== undefined) throw this.#ended.error
        if (open) return open // complete: every chunk is there
        throw new Error('the download ended before it began')
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#waiting.delete(wake)
          signal.removeEventListener('abort', wake)
          resolve()
        }
        this.#waiting.add(wake)
        signal.addEventListener('abort', wake, { once: true })
      })
    }
  }

  #wake() {
    for (const wake of [...this.#waiting]) wake()
  }
}
