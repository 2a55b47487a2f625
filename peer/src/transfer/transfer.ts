import type { Result } from '../wire/directory-client.ts'
import { isRelayedUrl } from '../wire/relay-protocol.ts'
import { STALL_MS } from './chunk-reader.ts'
import { NoSourcesError } from './download-errors.ts'
import { MANIFEST_TIMEOUT_MS, probedVariants } from './manifest-probe.ts'
import type { Connect, Source, SourceReport } from './source-pool.ts'
import { SwarmDownload, type Verified } from './swarm-download.ts'
import {
  type TransferEvent,
  TransferEventStream,
  type TransferFinished,
  type TransferProgress,
} from './transfer-events.ts'
import { TransferReaders } from './transfer-readers.ts'

/** One content by hash with its variants in the order to try them (the directory's). */
export type Wanted = { sha256: string; variants: Result[] }

/**
 * - running: fetching (or waiting for an earlier transfer of the same file to let go of it)
 * - stopping: told to stop (nobody wants it any more, or shutdown), not yet let go of the part file
 * - finished: verified, moved into place (or discarded when nobody kept it)
 * - failed: no variant could be fetched verified, or the disk failed
 */
export type TransferState = 'running' | 'stopping' | 'finished' | 'failed'

type TransferOptions = {
  wanted: Wanted
  outDir: string
  /** False: the verified file is discarded instead of moved into place, unless `keep()` is called. */
  keep: boolean
  /** This peer's username: its own listings are no source. */
  self: string
  /** How to reach sources, each call given up after `timeoutMs`. */
  connect: (timeoutMs: number) => Connect
  /** Asks the directory again for the live holders of `variant`. */
  findSources: (variant: Result) => Promise<Source[]>
  /** Settles once an earlier transfer of the same file has let go of its part file. */
  after?: Promise<unknown>
  /** Runs before anyone hears the transfer finished (the daemon shares the file). */
  onFinished?: (finished: TransferFinished) => Promise<void>
  /** Stops the transfer (shutdown); it keeps its verified chunks. */
  signal?: AbortSignal
  /** Requests in flight per source. */
  perSource?: number
  /** A chunk request that makes no progress for this long drops its source. */
  stallMs?: number
}

/**
 * One download of one content, from start to end: it tries the content's variants in order, those
 * whose manifest no holder sends (probed a few at once, see probedVariants) after the rest, each with a
 * SwarmDownload, until one completes verified; asks each variant's sources direct ones first; lets
 * readers read the bytes as they arrive, their positions steering it (`readers`); and tells what
 * happens as a stream of events (`events`). The holders of each variant that fails stay in the progress
 * report, dropped with why.
 *
 * It does not know who holds it open or when to stop for lack of interest: the daemon calls `stop`.
 */
export class Transfer {
  /** Reads of the bytes as they arrive; their positions steer the download. */
  readonly readers = new TransferReaders()
  /** Ends verified with the file in place, or with an empty path when nobody kept it. */
  readonly done: Promise<TransferFinished>
  readonly #options: TransferOptions
  readonly #stop = new AbortController()
  readonly #signal: AbortSignal
  readonly #events = new TransferEventStream()
  readonly #started = performance.now()
  #kept: boolean
  #ended: 'finished' | 'failed' | undefined
  #latest: TransferProgress
  /** The variants with their sources as they are asked: not this peer, direct ones first. */
  readonly #variants: Result[]
  /** Holders of variants that were tried and failed. */
  readonly #failed: SourceReport[] = []
  /** Holders of variants whose probe found no manifest, until (unless) the variant is tried after all. */
  readonly #unanswered = new Map<Result, SourceReport[]>()
  readonly #failures: string[] = []

  constructor(options: TransferOptions) {
    const first = options.wanted.variants[0]
    if (!first) throw new NoSourcesError(`nobody on the network has ${options.wanted.sha256}`)
    this.#options = options
    this.#kept = options.keep
    this.#signal = options.signal ? AbortSignal.any([options.signal, this.#stop.signal]) : this.#stop.signal
    this.#variants = options.wanted.variants.map((variant) => ({
      ...variant,
      sources: this.#ordered(variant.sources),
    }))
    this.#latest = { doneBytes: 0, resumedBytes: 0, activeSources: 0, sources: [], variant: first }
    this.done = this.#run()
    this.done.catch(() => {}) // followed through events and `done` by whoever wants the outcome
  }

  get state(): TransferState {
    return this.#ended ?? (this.#stop.signal.aborted ? 'stopping' : 'running')
  }

  /** The variant being fetched now (its name and size, as the directory lists them). */
  get variant(): Result {
    return this.#latest.variant
  }

  /** Its sources as the last progress reported them. */
  get sources(): SourceReport[] {
    return this.#latest.sources
  }

  /** Whether the file stays when it completes. */
  get kept(): boolean {
    return this.#kept
  }

  /** From now on the file is kept when it completes (a `peer get` or a kept reader joined). */
  keep() {
    this.#kept = true
  }

  /** Stops fetching, keeping the verified chunks; `done` fails with `reason`. */
  stop(reason: Error) {
    this.#stop.abort(reason)
  }

  /** Lets go of the file readers read from, once the transfer has ended and nobody will read it. */
  close() {
    this.readers.close()
  }

  /**
   * Where the transfer stands now (a `progress` event), then every event as it happens, until
   * `finished` or `failed` (or `signal` aborts, which only stops following).
   */
  events(signal: AbortSignal): AsyncGenerator<TransferEvent> {
    return this.#events.follow({ type: 'progress', progress: this.#latest }, signal)
  }

  async #run(): Promise<TransferFinished> {
    try {
      await this.#options.after
      const { part, chunkHashes, variant, progress } = await this.#anyVariant()
      let path: string
      try {
        path = this.#kept ? await part.finish(this.#options.outDir) : await part.discard()
      } catch (err) {
        await part.keep()
        throw err
      }
      const seconds = (performance.now() - this.#started) / 1000
      const finished = { ...progress, variant, path, seconds, chunkHashes }
      if (path) await this.#options.onFinished?.(finished)
      this.#end('finished')
      this.#events.emit({ type: 'finished', finished })
      return finished
    } catch (err) {
      this.#end('failed', err)
      this.#events.emit({ type: 'failed', error: err })
      throw err
    }
  }

  #end(outcome: 'finished' | 'failed', error?: unknown) {
    this.#ended = outcome
    this.readers.ended(error)
  }

  /** The first variant fetched verified, trying them in turn. */
  async #anyVariant(): Promise<Verified & { variant: Result; progress: TransferProgress }> {
    // Probed ahead: a variant nobody answers its manifest for is tried last, not waited out first.
    const variants = probedVariants(this.#variants, {
      connect: this.#options.connect(MANIFEST_TIMEOUT_MS),
      signal: this.#signal,
      unanswered: (variant, holders) => {
        this.#unanswered.set(variant, holders)
        this.#progress({ ...this.#latest, sources: this.#earlier() })
      },
    })
    for await (const variant of variants) {
      try {
        return await this.#tryVariant(variant)
      } catch (err) {
        // Another variant may yet be the true one; anything else (disk, shutdown) ends the transfer.
        if (!(err instanceof NoSourcesError) || this.#signal.aborted) throw err
        this.#failed.push(...err.sources.filter((s) => s.dropped))
        this.#failures.push(err.message)
        this.#progress({ ...this.#latest, sources: this.#earlier() })
      }
    }
    const failures = this.#failures
    throw new NoSourcesError(
      failures.length === 1
        ? (failures[0] as string)
        : `none of the ${failures.length} variants of ${this.#options.wanted.sha256} the network lists could be fetched verified: ${failures.join(' | ')}`,
      this.#earlier(),
    )
  }

  async #tryVariant(variant: Result): Promise<Verified & { variant: Result; progress: TransferProgress }> {
    this.#unanswered.delete(variant)
    this.#events.emit({ type: 'started', variant })
    this.#progress({ doneBytes: 0, resumedBytes: 0, activeSources: 0, sources: this.#earlier(), variant })
    const options = this.#options
    const stallMs = options.stallMs ?? STALL_MS
    const swarm = new SwarmDownload({
      target: variant,
      outDir: options.outDir,
      connect: options.connect(stallMs),
      initialSources: variant.sources,
      findSources: async () => this.#ordered(await options.findSources(variant)),
      onEvent: (event) => {
        if (event.type !== 'progress') return this.#events.emit(event)
        const { sources } = event.progress
        this.#progress({ ...event.progress, sources: [...sources, ...this.#earlier()], variant })
      },
      signal: this.#signal,
      perSource: options.perSource,
      stallMs,
      readers: this.readers,
    })
    const verified = await swarm.run()
    const progress = swarm.progress()
    return {
      ...verified,
      variant,
      progress: { ...progress, sources: [...progress.sources, ...this.#earlier()], variant },
    }
  }

  #progress(progress: TransferProgress) {
    this.#latest = progress
    this.#events.emit({ type: 'progress', progress })
  }

  #earlier(): SourceReport[] {
    return [...this.#failed, ...[...this.#unanswered.values()].flat()]
  }

  /**
   * Not this peer, and direct sources first: the downloader asks sources in this order, and a relay's
   * hop costs it and the relay's operator more than a peer's own port.
   */
  #ordered(sources: Source[]): Source[] {
    const self = this.#options.self.toLowerCase()
    return sources
      .filter((s) => s.username.toLowerCase() !== self)
      .sort((a, b) => Number(isRelayedUrl(a.url)) - Number(isRelayedUrl(b.url)))
  }
}
