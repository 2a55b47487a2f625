import type { FileEntry } from '../../../contract/api-types.ts'
import { chunkLength } from '../content/manifest.ts'
import { LinkMovedError } from '../wire/download-client.ts'
import { type QueuePlace, queuePlaceOf } from '../wire/queue-refusal.ts'
import { ChunkAssembly } from './chunk-assembly.ts'
import { readChunks, STALL_MS } from './chunk-reader.ts'
import { type ChunkRequest, ChunkScheduler, partRange } from './chunk-scheduler.ts'
import {
  describeSourceFailure,
  FalseManifestError,
  LocalWriteError,
  NoSourcesError,
} from './download-errors.ts'
import { firstFittingManifest } from './manifest-probe.ts'
import { PartFile } from './part-file.ts'
import type { Connect, PooledSource, Source } from './source-pool.ts'
import { SourcePool } from './source-pool.ts'
import type { Progress, SourceEvent } from './transfer-events.ts'
import type { TransferReaders } from './transfer-readers.ts'

type Options = {
  target: FileEntry
  outDir: string
  /** How to reach a source (its calls given the stall timeout). */
  connect: Connect
  /** Asks the directory again for live sources (when the known ones run out). */
  findSources: () => Promise<Source[]>
  /** The sources to ask first, in the order to ask them. */
  initialSources: Source[]
  /** What happens to the sources, and progress after each chunk. */
  onEvent: (event: SourceEvent | { type: 'progress'; progress: Progress }) => void
  signal: AbortSignal
  /** Requests in flight per source; more keeps a fast link busy. */
  perSource?: number
  /** A chunk request that makes no progress for this long drops its source. */
  stallMs?: number
  /** Readers of the download as it runs (peer cat, the gateway): their positions come first. */
  readers: TransferReaders
}

/** The verified file, ready to be moved into place or discarded, with the chunk hashes it matched. */
export type Verified = { part: PartFile; chunkHashes: Buffer[] }

/** Consecutive chunks asked for in one request: fewer, longer streams cost less per byte. */
const RUN_CHUNKS = 8
/** A reader's chunk is cut into at most this many parts, each one source's, of at least PART_BYTES. */
const MAX_PARTS = 4
const PART_BYTES = 64 * 1024
/** With fewer live sources than this, the directory is asked for more, at most every REFILL_MS. */
const FEW_SOURCES = 2
const REFILL_MS = 5000

/**
 * Fetches one variant of a content (its sha256 with the manifest, size and chunk size the directory
 * lists) from every live source at once and assembles it verified: the manifest against the variant
 * before anything is written or sized, every chunk against the manifest before it is written, the
 * whole file against its sha256 before `run` returns it. Which chunk goes to which source is the
 * ChunkScheduler's call; this joins it to the sources (SourcePool), the streams (readChunks) and the
 * disk (PartFile). An interrupted download keeps its verified chunks for the next attempt. A variant
 * nobody can serve verified ends in a NoSourcesError that names every source and why it was dropped.
 *
 * It does not choose the variant, order the sources, or decide whether the file is kept: the Transfer
 * does (one per content), and runs one of these per variant it tries.
 */
export class SwarmDownload {
  readonly #options: Options
  readonly #target: FileEntry
  readonly #stallMs: number
  readonly #pool: SourcePool
  #part: PartFile | undefined
  #resumedBytes = 0
  #doneBytes = 0
  /** Readers' chunks go in parts, until parts once made a chunk with the wrong hash. */
  #splitting = true

  constructor(options: Options) {
    this.#options = options
    this.#target = options.target
    this.#stallMs = options.stallMs ?? STALL_MS
    this.#pool = new SourcePool(options.connect)
  }

  progress(): Progress {
    return {
      doneBytes: this.#doneBytes,
      resumedBytes: this.#resumedBytes,
      activeSources: this.#pool.size,
      sources: this.#pool.report(),
    }
  }

  /** The file, verified whole; on failure the part file keeps its verified chunks. */
  async run(): Promise<Verified> {
    this.#add(this.#options.initialSources)
    try {
      const chunkHashes = await this.#fetchManifest()
      const part = await PartFile.open(this.#options.outDir, this.#target)
      this.#part = part
      if (part.resumed) await part.recheck(chunkHashes)
      this.#resumedBytes = part.verifiedBytes()
      this.#doneBytes = this.#resumedBytes
      // Only now: a resumed part's chunks are trusted once checked again.
      this.#options.readers.opened(part)
      this.#progressed()
      for (;;) {
        await new Round(this, part, chunkHashes).run()
        await part.save()
        if (await this.#matches(part, chunkHashes)) return { part, chunkHashes }
        this.#doneBytes = part.verifiedBytes()
      }
    } catch (err) {
      await this.#part?.keep()
      throw err
    } finally {
      this.#pool.close()
    }
  }

  /** Whether the whole file is the sha256; a false manifest drops everyone who vouched for it. */
  async #matches(part: PartFile, chunkHashes: Buffer[]): Promise<boolean> {
    try {
      return await part.matches(chunkHashes)
    } catch (err) {
      if (!(err instanceof FalseManifestError)) throw err
      // Every chunk matched a manifest that does not make this sha256: whoever vouched for it lied.
      for (const source of this.#pool.live()) this.drop(source, `published a false manifest (${err.message})`)
      throw new NoSourcesError(
        `no live source can serve ${this.#target.name}: ${err.message}`,
        this.#pool.report(),
      )
    }
  }

  /**
   * The chunk hashes, from the first source whose manifest matches the directory's manifest hash. A
   * source gets the stall timeout to send it, not a probe's short deadline: this is the download itself,
   * and a slow or relayed holder may be the only one.
   */
  async #fetchManifest(): Promise<Buffer[]> {
    for (;;) {
      const answer = await firstFittingManifest(
        this.#pool.live(),
        this.#target,
        this.#options.signal,
        this.#stallMs,
      )
      if ('chunkHashes' in answer) return answer.chunkHashes
      for (const { source, why } of answer.failures) this.drop(source, why)
      if (!(await this.refill())) throw this.noSources()
    }
  }

  // What a Round asks of the download it runs for.

  get target(): FileEntry {
    return this.#target
  }

  get pool(): SourcePool {
    return this.#pool
  }

  get options(): Options {
    return this.#options
  }

  get stallMs(): number {
    return this.#stallMs
  }

  /** Asks the directory for sources again; true if any is live. */
  async refill(): Promise<boolean> {
    try {
      this.#add(await this.#options.findSources())
    } catch {
      // the directory is unreachable: only the sources we still have can help
    }
    return this.#pool.size > 0
  }

  /** False when it was already dropped. */
  drop(source: PooledSource, why: string): boolean {
    if (!this.#pool.drop(source.url, why)) return false
    this.#options.onEvent({ type: 'sourceDropped', source: sourceOf(source), why })
    return true
  }

  /** The source put us in its upload queue: it is asked again when it said, not dropped. */
  queued(source: PooledSource, { place, retryAfterMs }: QueuePlace) {
    source.retryAt = Math.max(source.retryAt, performance.now() + retryAfterMs)
    if (source.queued === place) return
    source.queued = place
    this.#options.onEvent({ type: 'sourceQueued', source: sourceOf(source), place, retryAfterMs })
    this.#progressed()
  }

  get splitting(): boolean {
    return this.#splitting
  }

  /**
   * Parts from several sources made a chunk with the wrong hash. Which part lied cannot be told, so
   * from now on every chunk is asked whole, and a liar is caught by its own chunk's hash.
   */
  splitFailed() {
    this.#splitting = false
  }

  /** A chunk written: from `source`, or in parts, each source's share of its bytes in `shares`. */
  verified(
    index: number,
    data: Buffer,
    source: PooledSource,
    shares: ReadonlyMap<PooledSource, number> = new Map([[source, data.length]]),
  ) {
    for (const [from, bytes] of shares) this.#credit(from, bytes)
    this.#doneBytes += data.length
    this.#options.readers.written()
    this.#options.onEvent({ type: 'chunkVerified', index, bytes: data.length, source: sourceOf(source) })
    this.#progressed()
  }

  #credit(source: PooledSource, bytes: number) {
    if (source.queued > 0) {
      // Our turn came: its place is 0 from now on (the web app stops showing it).
      source.queued = 0
      this.#options.onEvent({ type: 'sourceQueued', source: sourceOf(source), place: 0, retryAfterMs: 0 })
    }
    source.bytes += bytes
  }

  noSources(): NoSourcesError {
    const why = this.#pool.droppedReasons()
    const state = this.#part
      ? `${this.#part.missingChunks()} of ${this.#part.chunks} chunks missing, kept for resume`
      : 'no source sent the manifest the directory lists'
    return new NoSourcesError(
      `no live source can serve ${this.#target.name} (${state})${why ? ` — ${why}` : ''}`,
      this.#pool.report(),
    )
  }

  #add(sources: Source[]) {
    for (const source of this.#pool.add(sources))
      this.#options.onEvent({ type: 'sourceTried', source: sourceOf(source) })
  }

  #progressed() {
    this.#options.onEvent({ type: 'progress', progress: this.progress() })
  }
}

const sourceOf = ({ username, url, key }: Source): Source => ({ username, url, key })

/**
 * One pass over the chunks the part file lacks: the scheduler's requests run against the live sources
 * until every chunk is written, the disk fails, or nobody is left (after asking the directory once more).
 */
class Round {
  readonly #download: SwarmDownload
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

  constructor(download: SwarmDownload, part: PartFile, chunkHashes: Buffer[]) {
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
        download.splitting ? Math.min(MAX_PARTS, Math.floor(lengthOf(index) / PART_BYTES)) : 1,
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
    if (this.#download.drop(source, why)) this.#scheduler.dropSource(source.url)
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
    const arrival = this.#scheduler.partArrived(request)
    if (arrival === 'stale') return
    this.#assembly.keep(index, start, data, source)
    if (arrival !== 'complete') return
    const whole = this.#assembly.take(index) as { data: Buffer; shares: ReadonlyMap<PooledSource, number> }
    if (!(await this.#part.verify(whole.data, this.#chunkHashes[index] as Buffer))) {
      this.#scheduler.splitFailed(index)
      this.#download.splitFailed()
      return
    }
    await this.#write(index, whole.data, source, whole.shares)
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
    this.#cancelDone()
    this.#assembly.forget(index)
    this.#download.verified(index, data, source, shares)
  }

  /**
   * Cancels the requests whose chunks are all written (a twin of the chunk won): a source that would
   * stream them to their end serves nobody, and its other callers, us included, get its turns.
   */
  #cancelDone() {
    for (const [request, cancel] of this.#cancels)
      if (request.chunks.every((index) => this.#scheduler.isDone(index))) cancel.abort()
  }

  async #fetch(request: ChunkRequest) {
    const download = this.#download
    const { target, stallMs } = download
    const scheduler = this.#scheduler
    const source = download.pool.get(request.source) as PooledSource
    const lengthOf = (index: number) => chunkLength(index, target.size, target.chunkSize)
    // A part: one stream of some bytes of one chunk, kept until the chunk is whole.
    const part = request.part && partRange(lengthOf(request.chunks[0] as number), request.part)
    const cancel = new AbortController()
    this.#cancels.set(request, cancel)
    const signal = AbortSignal.any([download.options.signal, cancel.signal])
    try {
      for await (const { index, data } of readChunks({
        open: (abort, arrived) =>
          source.link.download(
            {
              sha256: target.sha256,
              offset: (request.chunks[0] as number) * target.chunkSize + (part?.start ?? 0),
              length: part?.length ?? request.chunks.reduce((sum, i) => sum + lengthOf(i), 0),
              segmentBytes: part?.length ?? target.chunkSize,
              readerWaiting: request.readerWaiting,
              onBytes: arrived,
            },
            abort,
          ),
        chunks: request.chunks.map((i) => ({ index: i, length: part?.length ?? lengthOf(i) })),
        stallMs,
        signal,
      })) {
        if (part) {
          await this.#partArrived(request, part.start, data, source)
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
      if (signal.aborted) return
      // The disk, not the source, failed (full, read-only): stop, keep what is verified.
      if (err instanceof LocalWriteError) this.#failure = err
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
