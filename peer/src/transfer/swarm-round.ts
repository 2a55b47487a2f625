import type { FileEntry } from '../../../contract/api-types.ts'
import { chunkLength } from '../content/manifest.ts'
import { LinkMovedError } from '../wire/download-client.ts'
import { type QueuePlace, queuePlaceOf } from '../wire/queue-refusal.ts'
import { ChunkAssembly } from './chunk-assembly.ts'
import { partRange } from './chunk-parts.ts'
import { readChunks } from './chunk-reader.ts'
import { type ChunkRequest, ChunkScheduler } from './chunk-scheduler.ts'
import { describeSourceFailure, LocalWriteError, type NoSourcesError } from './download-errors.ts'
import type { PartFile } from './part-file.ts'
import type { PooledSource, SourcePool } from './source-pool.ts'
import type { TransferReaders } from './transfer-readers.ts'

/** What a Round asks of the download it runs for (a SwarmDownload). */
export interface RoundHost {
  readonly target: FileEntry
  readonly pool: SourcePool
  readonly options: { signal: AbortSignal; perSource?: number; readers: TransferReaders }
  readonly stallMs: number
  /** Whether readers' chunks may still go in parts (until parts once made a chunk with the wrong hash). */
  readonly splitting: boolean
  /** Asks the directory for sources again; true if any is live. */
  refill(): Promise<boolean>
  /** False when it was already dropped. */
  drop(source: PooledSource, why: string): boolean
  queued(source: PooledSource, place: QueuePlace): void
  stopSplitting(): void
  verified(
    index: number,
    data: Buffer,
    source: PooledSource,
    shares?: ReadonlyMap<PooledSource, number>,
  ): void
  noSources(): NoSourcesError
}

/** Consecutive chunks asked for in one request: fewer, longer streams cost less per byte. */
const RUN_CHUNKS = 8
/** A reader's chunk is cut into at most this many parts, each one source's, of at least PART_BYTES. */
const MAX_PARTS = 4
const PART_BYTES = 64 * 1024
/**
 * Readers that take more than this get whole chunks: their sources are fast, a chunk comes soon from
 * one, and parts cost a call each (from four uncapped sources on one machine, a read through the
 * gateway ran at 59-67 MiB/s in parts, 64-90 MiB/s whole).
 */
const PARTS_BELOW_BYTES_PER_SECOND = 16 * 1024 * 1024
/** With fewer live sources than this, the directory is asked for more, at most every REFILL_MS. */
const FEW_SOURCES = 2
const REFILL_MS = 5000

/**
 * One pass over the chunks the part file lacks: the scheduler's requests run against the live sources
 * until every chunk is written, the disk fails, or nobody is left (after asking the directory once more).
 */
export class Round {
  readonly #download: RoundHost
  readonly #part: PartFile
  readonly #chunkHashes: Buffer[]
  readonly #scheduler: ChunkScheduler
  #settled = false
  #failure: unknown
  #refilling = false
  #lastRefill = performance.now()
  #end: { resolve: () => void; reject: (err: unknown) => void } | undefined
  #stopFollowingReaders: (() => void) | undefined
  /** Sources that queued us, each with the timer that asks it again. */
  readonly #askAgain = new Map<string, NodeJS.Timeout>()
  /** How to cancel each request in flight (the scheduler preempts readers' requests the newest reader waits behind). */
  readonly #cancels = new Map<ChunkRequest, AbortController>()
  readonly #assembly: ChunkAssembly<PooledSource>

  constructor(download: RoundHost, part: PartFile, chunkHashes: Buffer[]) {
    this.#download = download
    this.#part = part
    this.#chunkHashes = chunkHashes
    const { options, target } = download
    const lengthOf = (index: number) => chunkLength(index, target.size, target.chunkSize)
    this.#assembly = new ChunkAssembly(lengthOf)
    this.#scheduler = new ChunkScheduler({
      chunks: part.chunks,
      done: (index) => part.has(index),
      perSource: options.perSource ?? 4,
      runChunks: RUN_CHUNKS,
      readPositions: options.readers.positions,
      readAheadChunks: options.readers.readAheadChunks,
      splitParts: (index) =>
        download.splitting && options.readers.rate() < PARTS_BELOW_BYTES_PER_SECOND
          ? Math.min(MAX_PARTS, Math.floor(lengthOf(index) / PART_BYTES))
          : 1,
    })
    this.#addLive()
  }

  run(): Promise<void> {
    const { signal, readers } = this.#download.options
    return new Promise<void>((resolve, reject) => {
      this.#end = { resolve, reject }
      signal.addEventListener('abort', this.#onAbort, { once: true })
      // A seek is served now, not when a running request ends.
      this.#stopFollowingReaders = readers.onMove(() => this.#pump())
      this.#pump()
    })
  }

  readonly #onAbort = () => {
    const { signal } = this.#download.options
    this.#finish(signal.reason ?? new Error('download cancelled'))
  }

  #finish(err?: unknown) {
    if (this.#settled) return
    this.#settled = true
    for (const timer of this.#askAgain.values()) clearTimeout(timer)
    this.#download.options.signal.removeEventListener('abort', this.#onAbort)
    this.#stopFollowingReaders?.()
    // Twins of chunks another copy brought, still streaming: nothing in them is wanted now.
    for (const cancel of this.#cancels.values()) cancel.abort()
    if (err) this.#end?.reject(err)
    else this.#end?.resolve()
  }

  #addLive() {
    const now = performance.now()
    for (const source of this.#download.pool.live()) {
      if (source.retryAt > now) this.#askLater(source)
      else this.#scheduler.addSource(source.url)
    }
  }

  /**
   * A source that queued us gets no request until the time it named (asking sooner would cost us our
   * place), then is planned for again. Its chunks go to the others meanwhile.
   */
  #queued(source: PooledSource, place: QueuePlace) {
    this.#download.queued(source, place)
    this.#scheduler.dropSource(source.url)
    this.#askLater(source)
  }

  #askLater(source: PooledSource) {
    if (this.#askAgain.has(source.url)) return
    const timer = setTimeout(
      () => {
        this.#askAgain.delete(source.url)
        if (this.#settled || source.dropped) return
        this.#scheduler.addSource(source.url)
        this.#pump()
      },
      Math.max(0, source.retryAt - performance.now()),
    )
    this.#askAgain.set(source.url, timer)
  }

  #drop(source: PooledSource, why: string) {
    if (!this.#download.drop(source, why)) return
    this.#scheduler.dropSource(source.url)
    this.#cancelUnwanted()
  }

  #refillThen(next: (found: boolean) => void) {
    this.#refilling = true
    this.#lastRefill = performance.now()
    void this.#download.refill().then((found) => {
      this.#addLive()
      this.#refilling = false
      next(found)
    })
  }

  #pump() {
    if (this.#settled) return
    if (this.#scheduler.complete) return this.#finish()
    if (this.#failure) return this.#finish(this.#failure)
    const { pool } = this.#download
    if (pool.size < FEW_SOURCES && !this.#refilling && performance.now() - this.#lastRefill > REFILL_MS) {
      // Running low: ask the directory for holders that appeared since (e.g. peers that just finished).
      this.#refillThen(() => this.#pump())
    }
    for (const request of this.#scheduler.preempted()) this.#cancels.get(request)?.abort()
    for (const request of this.#scheduler.plan()) {
      // Asked whole: any parts of it in hand are no longer wanted.
      if (!request.part) for (const index of request.chunks) this.#assembly.forget(index)
      void this.#fetch(request)
    }
    // A dropped source's requests still in flight may yet bring verified chunks: wait for them. A
    // download that only waits on queues waits: each source that queued us is asked again in time.
    if (this.#scheduler.openRequests === 0 && !this.#refilling && this.#askAgain.size === 0) {
      // Everyone we knew is gone: ask the directory once more before giving up.
      this.#refillThen((found) => (found ? this.#pump() : this.#finish(this.#download.noSources())))
    }
  }

  /** A part's bytes: kept; once its chunk is whole, the chunk is verified and written as any other. */
  async #partArrived(request: ChunkRequest, start: number, data: Buffer, source: PooledSource) {
    const index = request.chunks[0] as number
    // Dropped since it was asked (a false chunk, a failed call): its bytes are not taken.
    if (source.dropped) return
    const arrival = this.#scheduler.partArrived(request)
    if (arrival === 'stale') return
    this.#assembly.keep(index, start, data, source)
    if (arrival !== 'complete') return
    const whole = this.#assembly.take(index) as { data: Buffer; shares: ReadonlyMap<PooledSource, number> }
    try {
      if (!(await this.#part.verify(whole.data, this.#chunkHashes[index] as Buffer))) {
        this.#scheduler.splitFailed(index)
        this.#download.stopSplitting()
        // Its other parts' copies still on their way are of no use now.
        this.#cancelUnwanted()
        return
      }
      await this.#write(index, whole.data, source, whole.shares)
    } finally {
      this.#assembly.recycle(whole.data)
    }
  }

  /** A verified chunk: written by the first copy that claims it, any later one ignored. */
  async #write(
    index: number,
    data: Buffer,
    source: PooledSource,
    shares?: ReadonlyMap<PooledSource, number>,
  ) {
    if (!this.#scheduler.claim(index)) return
    try {
      await this.#part.write(index, data)
    } catch (err) {
      this.#scheduler.unclaim(index)
      throw err
    }
    this.#scheduler.written(index)
    this.#cancelUnwanted()
    this.#assembly.forget(index)
    this.#download.verified(index, data, source, shares)
  }

  /**
   * Cancels the requests that can bring nothing wanted (another copy of their chunks or part won, their
   * chunk was asked whole again, or their part comes from a source dropped since): a source that would
   * stream them to their end serves nobody, and its other callers, us included, get its turns.
   */
  #cancelUnwanted() {
    for (const [request, cancel] of this.#cancels) {
      const dropped = request.part && this.#download.pool.get(request.source)?.dropped
      if (dropped || !this.#scheduler.wants(request)) cancel.abort()
    }
  }

  async #fetch(request: ChunkRequest) {
    const download = this.#download
    const { target, stallMs } = download
    const scheduler = this.#scheduler
    const source = download.pool.get(request.source) as PooledSource
    const lengthOf = (index: number) => chunkLength(index, target.size, target.chunkSize)
    // A part: one stream of some bytes of one chunk, kept until the chunk is whole.
    const range = request.part && partRange(lengthOf(request.chunks[0] as number), request.part)
    const cancel = new AbortController()
    this.#cancels.set(request, cancel)
    const signal = AbortSignal.any([download.options.signal, cancel.signal])
    try {
      for await (const { index, data } of readChunks({
        open: (abort, arrived) =>
          source.link.download(
            {
              sha256: target.sha256,
              offset: (request.chunks[0] as number) * target.chunkSize + (range?.start ?? 0),
              length: range?.length ?? request.chunks.reduce((sum, i) => sum + lengthOf(i), 0),
              // A part too: the client's spare buffers are all of one size.
              segmentBytes: target.chunkSize,
              readerWaiting: request.readerWaiting,
              onBytes: arrived,
            },
            abort,
          ),
        chunks: request.chunks.map((i) => ({ index: i, length: range?.length ?? lengthOf(i) })),
        stallMs,
        signal,
      })) {
        if (range) {
          await this.#partArrived(request, range.start, data, source)
          continue
        }
        if (scheduler.isDone(index)) continue // an endgame twin won
        if (!(await this.#part.verify(data, this.#chunkHashes[index] as Buffer))) {
          this.#drop(source, `sent chunk ${index} with the wrong hash (lying or corrupt peer)`)
          break
        }
        await this.#write(index, data, source)
      }
    } catch (err) {
      // The disk, not the source, failed (full, read-only): stop, keep what is verified. Even when the
      // request was cancelled meanwhile (its chunk was being written, so nothing more was wanted of it).
      if (err instanceof LocalWriteError) this.#failure = err
      else if (signal.aborted) return
      else if (err instanceof LinkMovedError) {
        // Its chunks go back to be asked again, over the source's punched link.
      } else {
        const place = queuePlaceOf(err)
        if (place) this.#queued(source, place)
        else if (source.link.fallBack?.()) {
          // Its punched link failed: its chunks are asked again, through the relay.
        } else this.#drop(source, describeSourceFailure(err))
      }
    } finally {
      this.#cancels.delete(request)
      scheduler.ended(request)
      this.#pump()
    }
  }
}
