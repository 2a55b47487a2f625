import { type FileHandle, open } from 'node:fs/promises'
import type { PartFile } from '../transfer/part-file.ts'
import type { DownloadReaders } from '../transfer/swarm-download.ts'

/** Bytes a reader is handed at most at once, whatever the chunk size. */
const READ_SLICE = 1024 * 1024

type OpenPart = { part: PartFile; handle: Promise<FileHandle>; attempt: number }

/**
 * The readers of one running transfer (`peer cat`, the gateway's Range requests): each reads verified
 * bytes in order as their chunks land, and its read position steers the download (DownloadReaders). A
 * reader never sees a byte before its chunk matched the manifest. Bytes come from a handle opened on
 * the part file when it opens, which stays good when the finished file is moved into place or removed.
 *
 * It also knows who wants the transfer: a transfer nobody keeps (`peer cat --no-keep`) stops when its
 * last holder lets go, and its file is discarded if it completes.
 */
export class TransferReaders implements DownloadReaders {
  #open: OpenPart | undefined
  #attempts = 0
  #ended: { error?: unknown } | undefined
  #kept: boolean
  #holders = 0
  readonly #positions = new Map<symbol, number>()
  /** `#positions` as the scheduler asks for them, on every plan: made again only when one moves. */
  #sortedPositions: readonly number[] = []
  readonly #moveListeners = new Set<() => void>()
  readonly #waiting = new Set<() => void>()
  readonly #onIdle: () => void
  #unheld: (() => void) | undefined
  #readerCame: (() => void) | undefined
  #readers = 0

  /** `onIdle` runs when the last holder of a transfer nobody keeps lets go. */
  constructor(options: { keep: boolean; onIdle: () => void }) {
    this.#kept = options.keep
    this.#onIdle = options.onIdle
  }

  /** From now on the file is kept when it completes (a `peer get` or a kept reader joined). */
  keep() {
    this.#kept = true
  }

  discard = () => !this.#kept

  /** Holds the transfer open until the returned function is called. */
  hold(): () => void {
    this.#holders++
    let held = true
    return () => {
      if (!held) return
      held = false
      this.#holders--
      if (this.#holders === 0) {
        this.#closeIfDone()
        if (!this.#kept && !this.#ended) this.#onIdle()
        this.#unheld?.()
      }
    }
  }

  /** Runs `listener` once nobody holds the transfer (at once if nobody does). */
  whenUnheld(listener: () => void) {
    if (this.#holders === 0) return listener()
    this.#unheld = listener
  }

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

  opened = (part: PartFile) => {
    void this.#open?.handle.then((handle) => handle.close()).catch(() => {})
    this.#open = { part, handle: open(part.path, 'r'), attempt: ++this.#attempts }
    this.#open.handle.catch(() => {}) // a reader that needs it sees the error
    this.#wake()
  }

  written = () => this.#wake()

  positions = () => this.#sortedPositions

  #setPosition(me: symbol, chunk: number | undefined) {
    if (chunk === undefined) this.#positions.delete(me)
    else this.#positions.set(me, chunk)
    this.#sortedPositions = [...new Set(this.#positions.values())].sort((a, b) => a - b)
  }

  onMove = (listener: () => void) => {
    this.#moveListeners.add(listener)
    return () => this.#moveListeners.delete(listener)
  }

  /** The transfer ended: readers of chunks that never came get `error`; with none, all are there. */
  ended(error?: unknown) {
    this.#ended = { error }
    this.#wake()
    this.#closeIfDone()
  }

  /**
   * The verified bytes of [start, end) in order, each slice as soon as its chunk is on disk. Fails if the
   * transfer fails first, or if the attempt it read from was given up for another (its manifest was
   * false: what was read cannot be vouched for).
   */
  async *read(start: number, end: number, signal: AbortSignal): AsyncGenerator<Buffer> {
    const me = Symbol('reader')
    const release = this.hold()
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
        yield buffer
        offset += length
      }
    } finally {
      this.#setPosition(me, undefined)
      release()
    }
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
      }
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

  #closeIfDone() {
    if (!this.#ended || this.#holders > 0 || !this.#open) return
    const { handle } = this.#open
    this.#open = undefined
    void handle.then((h) => h.close()).catch(() => {})
  }
}
