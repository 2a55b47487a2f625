import { type ChunkPart, ChunkParts, type PartArrival } from './chunk-parts.ts'

/**
 * A request the scheduler hands out: consecutive chunks, asked of one source in one stream. One with
 * `readerWaiting` is a reader's (one chunk): the source serves it before this downloader's other calls.
 * One with `part` asks part `at` of `of` equal parts of its one chunk (`partRange`).
 */
export type ChunkRequest = { source: string; chunks: number[]; readerWaiting?: true; part?: ChunkPart }

type Options = {
  chunks: number
  /** Chunks already verified on disk (a resumed download). */
  done: (index: number) => boolean
  /** Requests in flight per source; more keeps a fast link busy. */
  perSource: number
  /** Most consecutive chunks in one request: fewer, longer streams cost less per byte. */
  runChunks: number
  /** The chunks readers wait for now (their read positions), most urgent first (the newest reader's). */
  readPositions?: () => readonly number[]
  /** How many chunks from a read position on go before the rest (sized by how fast readers read). */
  readAheadChunks?: () => number
  /**
   * Into how many parts a reader's chunk may be cut, each asked of another source (1: asked whole).
   * The parts are verified only once the chunk is whole, so a false one cannot be told from the rest.
   */
  splitParts?: (index: number) => number
}

/** The fewest chunks from a read position on that are fetched before the rest of the file. */
export const READ_AHEAD_CHUNKS = 4

/** The most chunks a reader's window takes from the sources' count alone (two a source). */
const FIRST_READ_AHEAD_CHUNKS = 16

/** Chunks written for each other source before a reader's awaited chunk is asked of a second source. */
const TWIN_AFTER_CHUNKS = 2

/** What to ask of a source: a run of chunks, or a part of one. */
type Ask = { chunks: number[]; part?: ChunkPart }
const NOTHING: Ask = { chunks: [] }

/** A source's requests in flight (readers' and the rest), and how many of them ask for each chunk. */
type SourceSlots = {
  requests: number
  reading: number
  open: Set<ChunkRequest>
  fetching: Map<number, number>
}

/**
 * Which chunk to ask of which source, and nothing else: no I/O, no clock, no randomness, so the rules
 * are tested on their own. The downloader tells it what happened (sources came and went, requests ended,
 * chunks arrived verified) and asks `plan()` what to request next.
 *
 * The rules: a missing chunk nobody is fetching goes to the next source with a free slot, in runs of up
 * to `runChunks` consecutive chunks, shorter near the end so what is left spreads over every source. Once
 * nothing is left unasked (endgame), a source with a free slot takes one chunk that exactly one other
 * live source is fetching, so no chunk (or part of one) is asked of more than two at once. A dropped
 * source's chunks go back at once; a request that ends returns what it did not deliver. A chunk is
 * written once: the first verified copy claims it.
 *
 * Readers (a stream or a seek) come first: the missing chunks from each read position to
 * `readAheadChunks` after it go out one per request, flagged `readerWaiting`, in up to `perSource`
 * slots of each source of their own, to the source with the fewest of them first. While a reader reads, each source runs at most one request for the
 * rest of the file, of one chunk while a reader's chunk is missing: a reader's chunk is never queued
 * behind more than one other request at a source, which serves flagged calls first anyway. The chunk a
 * reader waits for is asked of a second source as in endgame once its request has fallen behind. The
 * newest reader comes first: the other readers' windows wait while its own lacks a chunk, and their
 * requests in flight are cancelled while it waits (`preempted`).
 *
 * With several sources, a reader's chunk goes out in parts (`splitParts`), one to each source, in file
 * order: the sources together bring the chunk the reader waits on, then the next, instead of each
 * bringing a whole chunk of its own at its own rate. The downloader assembles the parts (`partArrived`)
 * and verifies the whole chunk; when that fails (`splitFailed`) the chunk is asked again.
 */
export class ChunkScheduler {
  readonly #options: Options
  readonly #done: Uint8Array
  #doneCount = 0
  readonly #writing = new Set<number>()
  /** Missing chunks nobody live is fetching, in file order (a streaming read position would pick from here). */
  readonly #pending: number[] = []
  /** Chunk -> how many requests of live sources ask for it (at most two, or two for each of its parts). */
  readonly #fetchers = new Map<number, number>()
  readonly #sources = new Map<string, SourceSlots>()
  /** Requests of dropped sources still in flight: their chunks went back, their streams still run. */
  readonly #orphans = new Set<ChunkRequest>()
  #openRequests = 0
  /** Chunks written so far, from every source: the scheduler's only clock. */
  #written = 0
  /** `#written` when each open request was asked. */
  readonly #askedAt = new WeakMap<ChunkRequest, number>()
  /** Readers' chunks asked in parts, until written; a chunk asked whole again drops its parts. */
  readonly #parts = new ChunkParts()

  constructor(options: Options) {
    this.#options = options
    this.#done = new Uint8Array(options.chunks)
    for (let index = 0; index < options.chunks; index++) {
      if (options.done(index)) {
        this.#done[index] = 1
        this.#doneCount++
      } else {
        this.#pending.push(index)
      }
    }
  }

  get complete(): boolean {
    return this.#doneCount === this.#options.chunks
  }

  /** Requests handed out that have not ended, dropped sources' included (they may still deliver). */
  get openRequests(): number {
    return this.#openRequests
  }

  get liveSources(): number {
    return this.#sources.size
  }

  isDone(index: number): boolean {
    return this.#done[index] === 1
  }

  /** Done, or a verified copy is being written: nothing more is wanted of the chunk. */
  #inHand(index: number): boolean {
    return this.isDone(index) || this.#writing.has(index)
  }

  /** How many live sources are fetching `index` now. */
  fetchers(index: number): number {
    return this.#fetchers.get(index) ?? 0
  }

  addSource(source: string) {
    if (!this.#sources.has(source))
      this.#sources.set(source, { requests: 0, reading: 0, open: new Set(), fetching: new Map() })
  }

  /** The source gets nothing more; what it was fetching is free for others at once. */
  dropSource(source: string) {
    const slots = this.#sources.get(source)
    if (!slots) return
    this.#sources.delete(source)
    for (const request of slots.open) {
      this.#orphans.add(request)
      this.#unask(request)
    }
    for (const [index, count] of slots.fetching) for (let n = 0; n < count; n++) this.#release(index)
  }

  /** The requests to make now: every free slot of every live source that has something to fetch. */
  plan(): ChunkRequest[] {
    const requests: ChunkRequest[] = []
    const { perSource } = this.#options
    for (let more = true; more; ) {
      more = false
      const reading = (this.#options.readPositions?.() ?? []).length > 0 && !this.complete
      const waiting = reading && this.#readerWaiting()
      for (const [source, slots] of this.#sources) {
        // A reader's chunks spread over the sources, the least busy with them first.
        const read =
          slots.reading < perSource && slots.reading === this.#fewestReading()
            ? this.#readRun(slots)
            : NOTHING
        const rest = reading ? 1 : perSource
        const { chunks, part } =
          read.chunks.length > 0 || slots.requests >= rest
            ? read
            : { chunks: this.#nextRun(slots, waiting), part: undefined }
        if (chunks.length === 0) continue
        const readerWaiting = read.chunks.length > 0
        if (readerWaiting) slots.reading++
        else slots.requests++
        this.#openRequests++
        for (const index of chunks) {
          slots.fetching.set(index, (slots.fetching.get(index) ?? 0) + 1)
          this.#fetchers.set(index, this.fetchers(index) + 1)
        }
        const request: ChunkRequest = readerWaiting ? { source, chunks, readerWaiting } : { source, chunks }
        if (part) {
          request.part = part
          this.#parts.asked(chunks[0] as number, part)
        }
        slots.open.add(request)
        this.#askedAt.set(request, this.#written)
        requests.push(request)
        more = true
      }
    }
    return requests
  }

  /**
   * The readers' requests to cancel now: while the most urgent reader (the newest) waits on the chunk at
   * its position, every flagged request whose chunks all lie behind it (a reader never passes a chunk it
   * lacks: these are other readers', or copies of chunks it has) or in another reader's window, outside
   * its own. A source serves a caller's reader chunks earliest in the file first, so a seek past them
   * waited for all of them (ffmpeg's jump to an MP4's index at its end waited 0.7 s behind the chunks
   * the first read had asked, and ffmpeg keeps that first request open until the jump is answered).
   * Its own read-ahead beyond a window that has since shrunk is never cancelled. The cancelled slots are
   * free at once and their chunks missing again; each request still ends as any other (`ended`), when
   * its cancel has reached its stream.
   */
  preempted(): ChunkRequest[] {
    const [urgent, ...others] = this.#options.readPositions?.() ?? []
    if (urgent === undefined || this.#inHand(urgent)) return []
    const ahead = this.#readAhead()
    const end = Math.min(this.#options.chunks, urgent + ahead)
    const yields = (index: number) => index < urgent || (index >= end && inWindow(index, others, ahead))
    const yielding = (request: ChunkRequest) => request.readerWaiting && request.chunks.every(yields)
    const cancelled: ChunkRequest[] = []
    for (const slots of this.#sources.values()) {
      for (const request of slots.open) {
        if (!yielding(request)) continue
        this.#close(slots, request)
        cancelled.push(request)
      }
    }
    // A source that queued us is dropped, then added again: its earlier streams still take its turns.
    for (const request of this.#orphans) {
      if (!yielding(request)) continue
      this.#orphans.delete(request)
      cancelled.push(request)
    }
    return cancelled
  }

  /** A verified copy of `index` arrived: true if it is the one to write (the chunk is not done or being written). */
  claim(index: number): boolean {
    if (this.#inHand(index)) return false
    this.#writing.add(index)
    return true
  }

  /**
   * A part's bytes arrived whole. 'stale': not wanted (its chunk is in hand, asked whole again, or the
   * part came already); 'kept': keep them; 'complete': keep them, and the chunk is whole: verify it.
   */
  partArrived(request: ChunkRequest): PartArrival {
    const index = request.chunks[0] as number
    if (!request.part || this.#inHand(index)) return 'stale'
    return this.#parts.arrived(index, request.part)
  }

  /** The parts of `index` made a chunk with the wrong hash: it is asked again, from scratch. */
  splitFailed(index: number) {
    // Only the parts that were all in hand: not one cut since (the chunk asked again meanwhile).
    if (!this.#parts.complete(index)) return
    this.#parts.drop(index)
    if (this.fetchers(index) === 0 && !this.#inHand(index)) this.#requeue(index)
  }

  /** False when the request can bring nothing wanted: its chunks are in hand, or its part is (or was dropped). */
  wants(request: ChunkRequest): boolean {
    const [index] = request.chunks
    const { part } = request
    if (!part || index === undefined) return request.chunks.some((i) => !this.#inHand(i))
    return this.#parts.missing(index, part) && !this.#inHand(index)
  }

  /** The claimed chunk is on disk. */
  written(index: number) {
    this.#parts.drop(index)
    if (!this.#writing.delete(index) || this.isDone(index)) return
    this.#done[index] = 1
    this.#doneCount++
    this.#written++
    this.#removePending(index)
  }

  /** The claimed chunk could not be written: it is missing again. */
  unclaim(index: number) {
    if (this.#writing.delete(index) && this.fetchers(index) === 0) this.#requeue(index)
  }

  /** A request ended, delivered or not: its slot is free and what it did not bring is missing again. */
  ended(request: ChunkRequest) {
    this.#openRequests--
    this.#orphans.delete(request)
    const slots = this.#sources.get(request.source)
    // Dropped (its chunks went back when it was), or preempted (they went back then).
    if (slots?.open.has(request)) this.#close(slots, request)
  }

  /** The request's slot is free and what it did not bring is missing again. */
  #close(slots: SourceSlots, request: ChunkRequest) {
    slots.open.delete(request)
    this.#unask(request)
    if (request.readerWaiting) slots.reading--
    else slots.requests--
    for (const index of request.chunks) {
      const count = slots.fetching.get(index) ?? 0
      if (count === 0) continue
      if (count === 1) slots.fetching.delete(index)
      else slots.fetching.set(index, count - 1)
      this.#release(index)
    }
  }

  /** A part request no longer asks for its part. */
  #unask(request: ChunkRequest) {
    if (request.part) this.#parts.unasked(request.chunks[0] as number, request.part)
  }

  #release(index: number) {
    const left = this.fetchers(index) - 1
    if (left > 0) {
      this.#fetchers.set(index, left)
      return
    }
    this.#fetchers.delete(index)
    if (!this.#inHand(index)) this.#requeue(index)
  }

  #fewestReading(): number {
    let fewest = Number.POSITIVE_INFINITY
    for (const slots of this.#sources.values()) fewest = Math.min(fewest, slots.reading)
    return fewest
  }

  #readAhead(): number {
    // A floor of two chunks a source (up to FIRST_READ_AHEAD_CHUNKS), also before readers' rate is
    // known: each source then has its next chunk for the reader queued when one ends, with no gap.
    const perSources = Math.min(FIRST_READ_AHEAD_CHUNKS, 2 * this.#sources.size)
    return Math.max(READ_AHEAD_CHUNKS, perSources, this.#options.readAheadChunks?.() ?? 0)
  }

  /** True when a chunk within some reader's read-ahead is still missing. */
  #readerWaiting(): boolean {
    const ahead = this.#readAhead()
    return (this.#options.readPositions?.() ?? []).some((position) => this.#lacksAny(position, ahead))
  }

  /**
   * One chunk (or part of one) for a reader, for each read position in turn: a part of a chunk asked in
   * parts that nobody asks, up to the first missing chunk nobody fetches; else the chunk it waits on if
   * nobody fetches it; else that chunk again if its one request must first bring missing chunks before
   * it (a seek into a run in flight: asked of another source, or of this one by a flagged request); else
   * the next missing chunk nobody fetches within the read-ahead; else the awaited chunk (or its part) of a
   * second source (a slow source must not hold the reader up).
   */
  #readRun(slots: SourceSlots): Ask {
    const ahead = this.#readAhead()
    const positions = this.#options.readPositions?.() ?? []
    // While the most urgent reader's window lacks a chunk, the other readers' chunks wait: asked now,
    // they would go before its chunks at the source, which serves a caller's reader chunks earliest in
    // the file first.
    const urgent = positions[0]
    for (const position of urgent !== undefined && this.#lacksAny(urgent, ahead) ? [urgent] : positions) {
      const end = Math.min(this.#options.chunks, position + ahead)
      let waited = position
      while (waited < end && this.isDone(waited)) waited++
      if (waited >= end) continue
      const at = this.#insertionPoint(position)
      const next = this.#pending[at]
      const part = this.#partToAsk(waited, Math.min(end, next ?? end))
      if (part) return part
      const take = () => this.#handOut(at)
      if (next === waited) return take()
      if (this.#parts.has(waited)) {
        if (next !== undefined && next < end) return take()
        const twin = this.#fallenBehindPart(slots, waited)
        if (twin) return twin
        continue
      }
      // Asked only unflagged (the rest of the file, before the reader got there), it would come after
      // every flagged chunk of ours at that source: it is asked again, flagged, of this one too.
      const unflagged = !this.#askedFlagged(waited)
      const twin =
        this.fetchers(waited) === 1 &&
        !this.#writing.has(waited) &&
        (!slots.fetching.has(waited) || unflagged || this.#behindInStream(slots, waited))
      if (
        twin &&
        (unflagged || [...this.#sources.values()].some((other) => this.#behindInStream(other, waited)))
      )
        return { chunks: [waited] }
      if (next !== undefined && next < end) return take()
      if (twin && this.#fallenBehind(waited)) return { chunks: [waited] }
    }
    return NOTHING
  }

  /**
   * The pending chunk at `at`, for a reader: in parts when it may be cut and several sources can share
   * it (the first part now, the others to the next sources that plan), else whole.
   */
  #handOut(at: number): Ask {
    const index = this.#pending.splice(at, 1)[0] as number
    if (!this.#parts.has(index) && !this.#cut(index)) return { chunks: [index] }
    const part = this.#parts.firstMissing(index)
    if (part) return { chunks: [index], part }
    // Every part came and its chunk is being verified, but its last request was cancelled: asked whole.
    this.#parts.drop(index)
    return { chunks: [index] }
  }

  /**
   * A part for a reader in [from, to), where no chunk is pending: the first part nobody asks of a chunk
   * asked in parts, or the first of a chunk asked only unflagged (for the rest of the file, before the
   * reader got there: at its source it comes after all of ours), cut into parts now. The unflagged
   * request runs on; whichever copy is whole first is written.
   */
  #partToAsk(from: number, to: number): Ask | undefined {
    for (let index = from; index < to; index++) {
      // A chunk whose part requests all ended is pending again: `#handOut` asks it then.
      if (this.#inHand(index) || this.fetchers(index) === 0) continue
      if (!this.#parts.has(index) && (this.#askedFlagged(index) || !this.#cut(index))) continue
      const part = this.#parts.firstUnasked(index)
      if (part) return { chunks: [index], part }
    }
    return undefined
  }

  /** Cuts `index` into parts, if it may be cut and several sources can share it; true if it was. */
  #cut(index: number): boolean {
    const of = Math.min(this.#options.splitParts?.(index) ?? 1, this.#sources.size)
    if (of < 2) return false
    this.#parts.cut(index, of)
    return true
  }

  /** A part of `index` still missing whose one request has fallen behind, asked of another source. */
  #fallenBehindPart(slots: SourceSlots, index: number): Ask | undefined {
    for (const other of this.#sources.values()) {
      if (other === slots) continue
      for (const request of other.open) {
        const { part } = request
        if (!part || request.chunks[0] !== index || !this.#parts.askedOnce(index, part)) continue
        if (this.#behind(request)) return { chunks: [index], part }
      }
    }
    return undefined
  }

  /** True when a chunk of [from, from + count) is not done. */
  #lacksAny(from: number, count: number): boolean {
    const end = Math.min(this.#options.chunks, from + count)
    for (let index = from; index < end; index++) if (!this.isDone(index)) return true
    return false
  }

  /**
   * True when the request fetching `index` has fallen behind: TWIN_AFTER_CHUNKS chunks for each other
   * source were written since it was asked. Only then is a second source asked for a chunk a reader
   * waits on: with sources alike, that second copy took a quarter of four 1 MiB/s sources (a player got
   * 0.7 of their sum instead of all of it).
   */
  #fallenBehind(index: number): boolean {
    for (const slots of this.#sources.values())
      for (const request of slots.open) if (request.chunks.includes(index)) return this.#behind(request)
    return false
  }

  /** True when TWIN_AFTER_CHUNKS chunks for each other source were written since `request` was asked. */
  #behind(request: ChunkRequest): boolean {
    const others = Math.max(1, this.#sources.size - 1)
    return this.#written - (this.#askedAt.get(request) ?? this.#written) >= TWIN_AFTER_CHUNKS * others
  }

  /** True when a live source is asked for `index` by a reader's request. */
  #askedFlagged(index: number): boolean {
    for (const slots of this.#sources.values())
      for (const request of slots.open)
        if (request.readerWaiting && request.chunks.includes(index)) return true
    return false
  }

  /** True when the source's stream for `index` must first bring chunks still missing before it. */
  #behindInStream(slots: SourceSlots, index: number): boolean {
    for (const request of slots.open) {
      const at = request.chunks.indexOf(index)
      if (at > 0 && request.chunks.slice(0, at).some((earlier) => !this.isDone(earlier))) return true
    }
    return false
  }

  /**
   * The next run for the rest of the file: one chunk while a reader waits (its bytes go first), outside
   * the first reader's window while there is one: a chunk of the window asked for unflagged gets the
   * source's turns only when no flagged call wants them, and the reader would wait on it once there.
   */
  #nextRun(slots: SourceSlots, readerWaiting: boolean): number[] {
    const { perSource, runChunks } = this.#options
    const fairShare = Math.floor(this.#pending.length / Math.max(1, this.#sources.size * perSource))
    const runLength = readerWaiting ? 1 : Math.max(1, Math.min(runChunks, fairShare))
    // Beyond the window of the reader earliest in the file (readers come newest first).
    const positions = this.#options.readPositions?.() ?? []
    const first = positions.length > 0 ? Math.min(...positions) : undefined
    let from = 0
    if (readerWaiting && first !== undefined && (this.#pending[0] as number) >= first) {
      const beyond = this.#insertionPoint(first + this.#readAhead())
      if (beyond < this.#pending.length) from = beyond
    }
    const run: number[] = []
    while (run.length < runLength && from < this.#pending.length) {
      const index = this.#pending[from] as number
      if (run.length > 0 && index !== (run.at(-1) as number) + 1) break
      run.push(index)
      this.#pending.splice(from, 1)
      this.#parts.drop(index)
    }
    if (run.length > 0 || this.#sources.size < 2) return run
    for (const [index, count] of this.#fetchers) {
      if (count !== 1 || slots.fetching.has(index) || this.#inHand(index)) continue
      // In a reader's window, a chunk in parts gets a second copy of a part that has fallen behind
      // (`#readRun`), not a whole one that would throw the parts in hand away; left by its readers, whole.
      if (this.#parts.has(index)) {
        if (inWindow(index, this.#options.readPositions?.() ?? [], this.#readAhead())) continue
        this.#parts.drop(index)
      }
      return [index]
    }
    return run
  }

  /** Back in file order, once. */
  #requeue(index: number) {
    const at = this.#insertionPoint(index)
    if (this.#pending[at] !== index) this.#pending.splice(at, 0, index)
  }

  #removePending(index: number) {
    const at = this.#insertionPoint(index)
    if (this.#pending[at] === index) this.#pending.splice(at, 1)
  }

  #insertionPoint(index: number): number {
    let low = 0
    let high = this.#pending.length
    while (low < high) {
      const middle = (low + high) >> 1
      if ((this.#pending[middle] as number) < index) low = middle + 1
      else high = middle
    }
    return low
  }
}

/** True when `index` lies in the window of `ahead` chunks from one of `positions`. */
const inWindow = (index: number, positions: readonly number[], ahead: number) =>
  positions.some((position) => index >= position && index < position + ahead)
