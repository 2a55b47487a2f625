import type { FileEntry } from '../../../contract/api-types.ts'
import type { QueuePlace } from '../wire/queue-refusal.ts'
import { STALL_MS } from './chunk-reader.ts'
import { FalseManifestError, NoSourcesError } from './download-errors.ts'
import { firstFittingManifest } from './manifest-probe.ts'
import { PartFile } from './part-file.ts'
import type { Connect, PooledSource, Source } from './source-pool.ts'
import { SourcePool } from './source-pool.ts'
import { Round, type RoundHost } from './swarm-round.ts'
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

/**
 * Fetches one variant of a content (its sha256 with the manifest, size and chunk size the directory
 * lists) from every live source at once and assembles it verified: the manifest against the variant
 * before anything is written or sized, every chunk against the manifest before it is written, the
 * whole file against its sha256 before `run` returns it. Which chunk goes to which source is the
 * ChunkScheduler's call; each Round (swarm-round.ts) joins it to the sources (SourcePool), the streams
 * (readChunks) and the disk (PartFile) for one pass over what the part file lacks, and this keeps what
 * outlives a pass: the sources, the progress, and whether readers' chunks may still go in parts. An
 * interrupted download keeps its verified chunks for the next attempt. A variant nobody can serve
 * verified ends in a NoSourcesError that names every source and why it was dropped.
 *
 * It does not choose the variant, order the sources, or decide whether the file is kept: the Transfer
 * does (one per content), and runs one of these per variant it tries.
 */
export class SwarmDownload implements RoundHost {
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

  // What a Round asks of the download it runs for (RoundHost).

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
  stopSplitting() {
    this.#splitting = false
  }

  /** A chunk written: from `source`, or in parts, each source's share of its bytes in `shares`. */
  verified(index: number, data: Buffer, source: PooledSource, shares?: ReadonlyMap<PooledSource, number>) {
    if (!shares) this.#credit(source, data.length)
    else for (const [from, bytes] of shares) this.#credit(from, bytes)
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
