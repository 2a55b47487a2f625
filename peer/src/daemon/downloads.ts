import { stat } from 'node:fs/promises'
import { basename } from 'node:path'
import { sameVariant } from '../../../contract/variant.ts'
import { savedName } from '../content/safe-path.ts'
import type { SharedFile } from '../content/share-index.ts'
import type { CallCredentials } from '../transfer/peer-link.ts'
import { peerLinks } from '../transfer/peer-link.ts'
import { Transfer, type Wanted } from '../transfer/transfer.ts'
import type { TransferFinished } from '../transfer/transfer-events.ts'
import type { DirectoryClient } from '../wire/directory-client.ts'
import type { DirectorySession } from './directory-session.ts'
import { TransferHolds } from './transfer-holds.ts'

export type { Wanted }

type DownloadsOptions = {
  directory: DirectoryClient
  session: DirectorySession
  /** The call token for each source. */
  credentials: CallCredentials
  onFinished: (file: SharedFile) => void
  /** Each new transfer, as it starts (the daemon's events follow it). */
  onStarted?: (transfer: Transfer) => void
  /** A chunk request that makes no progress for this long drops its source (default STALL_MS). */
  stallMs?: number
}

type Entry = { transfer: Transfer; holds: TransferHolds }

/**
 * The daemon's transfers, one per content and destination folder: a second `peer get` of content already
 * being fetched joins the running transfer. A transfer nobody keeps (`peer cat --no-keep`) stops when its
 * last holder lets go; an ended one is forgotten once nobody holds it. A finished file is shared at once.
 */
export class Downloads {
  readonly #entries = new Map<string, Entry>()
  readonly #holds = new WeakMap<Transfer, TransferHolds>()
  readonly #abort = new AbortController()
  readonly #options: DownloadsOptions

  constructor(options: DownloadsOptions) {
    this.#options = options
  }

  get active(): number {
    return [...this.#entries.values()].filter(({ transfer }) =>
      ['running', 'stopping'].includes(transfer.state),
    ).length
  }

  /** Sources of running transfers whose bytes come over a link punched through NAT. */
  get punchedSources(): number {
    return [...this.#entries.values()]
      .filter(({ transfer }) => transfer.state === 'running')
      .flatMap(({ transfer }) => transfer.sources)
      .filter((source) => source.route === 'punched' && !source.dropped).length
  }

  /**
   * The transfer of `sha256` into `outDir`, if one runs or has ended with readers still reading it (a
   * finished `--no-keep` file is gone from disk but not from their open handle).
   */
  running(sha256: string, outDir: string): Transfer | undefined {
    const transfer = this.#entries.get(keyOf(sha256, outDir))?.transfer
    return transfer?.state === 'running' || transfer?.state === 'finished' ? transfer : undefined
  }

  /**
   * Fetches `wanted` into `outDir`, or joins the transfer already doing it. One started with `keep:
   * false` stops when its last holder lets go, and is discarded when it completes, unless someone who
   * keeps it joins.
   */
  start(asked: Wanted, outDir: string, options: { keep?: boolean } = {}): Transfer {
    const keep = options.keep ?? true
    // Names come from the directory: one that is no plain file name is saved under the sha256.
    const variants = asked.variants.map((v) => ({ ...v, name: savedName(v.name, v.sha256) }))
    const wanted = { ...asked, variants }
    const running = this.running(wanted.sha256, outDir)
    // A finished transfer nobody kept has discarded its file: one who keeps it starts afresh.
    const discarded = running?.state === 'finished' && !running.kept
    if (running && !(keep && discarded)) {
      if (keep) running.keep()
      return running
    }
    const key = keyOf(wanted.sha256, outDir)
    const { directory, session, credentials } = this.#options
    const transfer = new Transfer({
      wanted,
      outDir,
      keep,
      self: session.username,
      connect: (timeoutMs) => peerLinks({ credentials, timeoutMs }),
      findSources: async (variant) => {
        const found = await directory.file(wanted.sha256, session.token)
        return found?.variants.find((v) => sameVariant(v, variant))?.sources ?? []
      },
      // One that is stopping, failed or discarded may still hold the part file until it settles.
      after: this.#entries.get(key)?.transfer.done.catch(() => {}),
      onFinished: (finished) => this.#share(finished),
      signal: this.#abort.signal,
      stallMs: this.#options.stallMs,
    })
    const entry: Entry = { transfer, holds: new TransferHolds(() => this.#letGo(key, entry)) }
    void transfer.done
      .catch(() => {})
      .then(() => {
        if (!entry.holds.held) this.#forget(key, entry)
      })
    this.#entries.set(key, entry)
    this.#holds.set(transfer, entry.holds)
    this.#options.onStarted?.(transfer)
    return transfer
  }

  /**
   * Stops every running transfer of `sha256` (the web app's Cancel); each keeps its verified chunks
   * in its `.part`, so a later start resumes. False when none ran.
   */
  cancel(sha256: string): boolean {
    let stopped = false
    for (const { transfer } of this.#entries.values()) {
      if (transfer.variant.sha256 !== sha256 || transfer.state !== 'running') continue
      transfer.stop(new Error('cancelled'))
      stopped = true
    }
    return stopped
  }

  /** Holds `transfer` open until the returned function is called: while held, it goes on and stays findable. */
  hold(transfer: Transfer): () => void {
    return this.#holds.get(transfer)?.hold() ?? (() => {})
  }

  /** Stops every transfer; each keeps its verified chunks for the next attempt. */
  async stop() {
    this.#abort.abort(new Error('the daemon is shutting down'))
    await Promise.allSettled([...this.#entries.values()].map(({ transfer }) => transfer.done))
  }

  /** Nobody holds it any more: one nobody keeps stops; one that ended is forgotten. */
  #letGo(key: string, entry: Entry) {
    const { transfer } = entry
    if (transfer.state === 'running' && !transfer.kept)
      transfer.stop(new Error('nobody reads or keeps the download any more'))
    if (transfer.state === 'finished' || transfer.state === 'failed') this.#forget(key, entry)
  }

  #forget(key: string, entry: Entry) {
    if (this.#entries.get(key) === entry) this.#entries.delete(key)
    entry.transfer.close()
  }

  async #share(finished: TransferFinished) {
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
  }
}

const keyOf = (sha256: string, outDir: string) => `${sha256}\u0000${outDir}`
