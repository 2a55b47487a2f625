import { stat } from 'node:fs/promises'
import { basename } from 'node:path'
import { sameVariant } from '../../../contract/variant.ts'
import type { SharedFile } from '../content/share-index.ts'
import { NoSourcesError } from '../transfer/download-errors.ts'
import { MANIFEST_TIMEOUT_MS, probedVariants } from '../transfer/manifest-probe.ts'
import { peerLinks } from '../transfer/peer-link.ts'
import {
  type CallCredentials,
  type Finished,
  type Progress,
  type SourceReport,
  swarmDownload,
} from '../transfer/swarm-download.ts'
import type { DirectoryClient, Result } from '../wire/directory-client.ts'
import { isRelayedUrl } from '../wire/relay-protocol.ts'
import type { DirectorySession } from './directory-session.ts'
import { TransferReaders } from './transfer-readers.ts'

type DownloadsOptions = {
  directory: DirectoryClient
  session: DirectorySession
  /** The call token for each source. */
  credentials: CallCredentials
  onFinished: (file: SharedFile) => void
}

/** One content by hash with its variants in the order to try them (the directory's). */
export type Wanted = { sha256: string; variants: Result[] }

/** Progress of the variant being tried, with the holders of variants that failed before it (dropped). */
export type VariantProgress = Progress & { variant: Result }
export type VariantFinished = Finished & { variant: Result }

export type Transfer = {
  /** Ends verified with the file in place, or with an empty path when nobody kept it (see readers). */
  done: Promise<VariantFinished>
  /** Reads of the bytes as they arrive, and who holds the transfer open. */
  readers: TransferReaders
  /** The variant being fetched now (its name and size, as the directory lists them). */
  variant: () => Result
  /**
   * Stopping (nobody held it) and failed transfers take nobody new: a new start begins afresh once they
   * have let go of the part file. A finished one stays findable while readers still hold it.
   */
  state: () => 'running' | 'stopping' | 'finished' | 'failed'

  /** Progress snapshots until the transfer ends (or `signal` aborts, which only stops listening). */
  updates: (signal: AbortSignal) => AsyncGenerator<VariantProgress>
}

/**
 * The daemon's downloads, one per content: a second `peer get` of content already being fetched joins
 * the running transfer. The variants of a content are tried in order until one completes verified,
 * those whose manifest no holder sends (probed a few at once, see probedVariants) after the rest;
 * the holders of each variant that fails stay in the progress report, dropped with why. A finished
 * file is shared at once.
 */
export class Downloads {
  readonly #running = new Map<string, Transfer>()
  readonly #abort = new AbortController()
  readonly #options: DownloadsOptions

  constructor(options: DownloadsOptions) {
    this.#options = options
  }

  get active(): number {
    return [...this.#running.values()].filter((t) => t.state() === 'running' || t.state() === 'stopping')
      .length
  }

  /**
   * The transfer of `sha256` into `outDir`, if one runs or has ended with readers still reading it (a
   * finished `--no-keep` file is gone from disk but not from their open handle).
   */
  running(sha256: string, outDir: string): Transfer | undefined {
    const transfer = this.#running.get(`${sha256}\u0000${outDir}`)
    const state = transfer?.state()
    return state === 'running' || state === 'finished' ? transfer : undefined
  }

  /**
   * Fetches `wanted` into `outDir`, or joins the transfer already doing it. One started with `keep:
   * false` stops when its last holder lets go, and is discarded when it completes, unless someone who
   * keeps it joins.
   */
  start(wanted: Wanted, outDir: string, options: { keep?: boolean } = {}): Transfer {
    const keep = options.keep ?? true
    const running = this.running(wanted.sha256, outDir)
    // A finished transfer nobody kept has discarded its file: one who keeps it starts afresh.
    const discarded = running?.state() === 'finished' && running.readers.discard()
    if (running && !(keep && discarded)) {
      if (keep) running.readers.keep()
      return running
    }
    const key = `${wanted.sha256}\u0000${outDir}`
    // One that is stopping, failed or discarded may still hold the part file until it settles.
    const previous = this.#running.get(key)?.done.catch(() => {})
    const { directory, session } = this.#options
    const first = wanted.variants[0]
    if (!first) throw new NoSourcesError(`nobody on the network has ${wanted.sha256}`)
    let latest: VariantProgress = {
      doneBytes: 0,
      resumedBytes: 0,
      activeSources: 0,
      sources: [],
      variant: first,
    }
    const listeners = new Set<() => void>()
    const notify = () => {
      for (const listener of listeners) listener()
    }
    const self = session.username.toLowerCase()
    // Direct sources first: the downloader asks sources in this order, and a relay's hop costs it and
    // the relay's operator more than a peer's own port.
    const others = (sources: Result['sources']) =>
      sources
        .filter((s) => s.username.toLowerCase() !== self)
        .sort((a, b) => Number(isRelayedUrl(a.url)) - Number(isRelayedUrl(b.url)))
    const idle = new AbortController()
    const readers = new TransferReaders({
      keep,
      onIdle: () => idle.abort(new Error('nobody reads or keeps the download any more')),
    })
    const signal = AbortSignal.any([this.#abort.signal, idle.signal])
    const failed: SourceReport[] = []
    // Holders of variants whose probe found no manifest, until (unless) the variant is tried after all.
    const unanswered = new Map<Result, SourceReport[]>()
    const earlier = () => [...failed, ...[...unanswered.values()].flat()]
    const failures: string[] = []
    const tryVariant = async (variant: Result): Promise<VariantFinished> => {
      unanswered.delete(variant)
      const finished = await swarmDownload({
        target: variant,
        outDir,
        credentials: this.#options.credentials,
        initialSources: others(variant.sources),
        findSources: async () => {
          const found = await directory.file(wanted.sha256, session.token)
          return others(found?.variants.find((v) => sameVariant(v, variant))?.sources ?? [])
        },
        onProgress: (progress) => {
          latest = { ...progress, sources: [...progress.sources, ...earlier()], variant }
          notify()
        },
        signal,
        readers,
      })
      return { ...finished, sources: [...finished.sources, ...earlier()], variant }
    }
    const tryAll = async (): Promise<VariantFinished> => {
      await previous
      // Probed ahead: a variant nobody answers its manifest for is tried last, not waited out first.
      const variants = probedVariants(
        wanted.variants.map((variant) => ({ ...variant, sources: others(variant.sources) })),
        {
          connect: peerLinks({ credentials: this.#options.credentials, timeoutMs: MANIFEST_TIMEOUT_MS }),
          signal,
          unanswered: (variant, holders) => {
            unanswered.set(variant, holders)
            latest = { ...latest, sources: earlier() }
            notify()
          },
        },
      )
      for await (const variant of variants) {
        latest = { ...latest, doneBytes: 0, resumedBytes: 0, activeSources: 0, variant }
        try {
          return await tryVariant(variant)
        } catch (err) {
          // Another variant may yet be the true one; anything else (disk, shutdown) ends the transfer.
          if (!(err instanceof NoSourcesError) || signal.aborted) throw err
          failed.push(...err.sources.filter((s) => s.dropped))
          failures.push(err.message)
          latest = { ...latest, sources: earlier() }
          notify()
        }
      }
      throw new NoSourcesError(
        failures.length === 1
          ? (failures[0] as string)
          : `none of the ${failures.length} variants of ${wanted.sha256} the network lists could be fetched verified: ${failures.join(' | ')}`,
        earlier(),
      )
    }
    const done = tryAll().then(async (finished) => {
      if (!finished.path) return finished
      const info = await stat(finished.path)
      const { variant } = finished
      this.#options.onFinished({
        name: basename(finished.path),
        path: finished.path,
        mtimeMs: info.mtimeMs,
        size: variant.size,
        sha256: variant.sha256,
        chunkSize: variant.chunkSize,
        chunkHashes: finished.chunkHashes,
        manifest: variant.manifest,
      })
      return finished
    })
    let ended: 'finished' | 'failed' | undefined
    const settle = (outcome: 'finished' | 'failed', err?: unknown) => {
      ended = outcome
      readers.ended(err)
      readers.whenUnheld(() => {
        if (this.#running.get(key) === transfer) this.#running.delete(key)
      })
      notify()
    }
    done.then(
      () => settle('finished'),
      (err: unknown) => settle('failed', err),
    )
    const transfer: Transfer = {
      done,
      readers,
      variant: () => latest.variant,
      state: () => ended ?? (idle.signal.aborted ? 'stopping' : 'running'),
      async *updates(signal: AbortSignal): AsyncGenerator<VariantProgress> {
        while (!ended && !signal.aborted) {
          yield latest
          await new Promise<void>((resolve) => {
            const wake = () => {
              clearTimeout(timer)
              listeners.delete(wake)
              signal.removeEventListener('abort', wake)
              resolve()
            }
            const timer = setTimeout(wake, 250)
            listeners.add(wake)
            signal.addEventListener('abort', wake, { once: true })
          })
          await new Promise((r) => setTimeout(r, 100))
        }
      },
    }
    this.#running.set(key, transfer)
    return transfer
  }

  /** Stops every transfer; each keeps its verified chunks for the next attempt. */
  async stop() {
    this.#abort.abort(new Error('the daemon is shutting down'))
    await Promise.allSettled([...this.#running.values()].map((t) => t.done))
  }
}
