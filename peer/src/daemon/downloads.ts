import { stat } from 'node:fs/promises'
import { basename } from 'node:path'
import type { SharedFile } from '../content/share-index.ts'
import {
  type CallCredentials,
  type Finished,
  type Progress,
  swarmDownload,
} from '../transfer/swarm-download.ts'
import type { DirectoryClient, Result } from '../wire/directory-client.ts'
import type { DirectorySession } from './directory-session.ts'

type DownloadsOptions = {
  directory: DirectoryClient
  session: DirectorySession
  /** The call token for each source. */
  credentials: CallCredentials
  onFinished: (file: SharedFile) => void
}

export type Transfer = {
  done: Promise<Finished>
  /** Progress snapshots until the transfer ends (or `signal` aborts, which only stops listening). */
  updates: (signal: AbortSignal) => AsyncGenerator<Progress>
}

/**
 * The daemon's downloads, one per content: a second `peer get` of content already being fetched joins
 * the running transfer. A finished file is shared at once.
 */
export class Downloads {
  readonly #running = new Map<string, Transfer>()
  readonly #abort = new AbortController()
  readonly #options: DownloadsOptions

  constructor(options: DownloadsOptions) {
    this.#options = options
  }

  get active(): number {
    return this.#running.size
  }

  start(result: Result, outDir: string): Transfer {
    const key = `${result.sha256}\u0000${outDir}`
    const running = this.#running.get(key)
    if (running) return running
    const { directory, session } = this.#options
    let latest: Progress = { doneBytes: 0, resumedBytes: 0, activeSources: 0, sources: [] }
    const listeners = new Set<() => void>()
    const notify = () => {
      for (const listener of listeners) listener()
    }
    const self = session.username.toLowerCase()
    const others = (sources: Result['sources']) => sources.filter((s) => s.username.toLowerCase() !== self)
    const done = swarmDownload({
      target: result,
      outDir,
      credentials: this.#options.credentials,
      initialSources: others(result.sources),
      findSources: async () => others((await directory.file(result.sha256, session.token))?.sources ?? []),
      onProgress: (progress) => {
        latest = progress
        notify()
      },
      signal: this.#abort.signal,
    })
      .then(async (finished) => {
        const info = await stat(finished.path)
        this.#options.onFinished({
          name: basename(finished.path),
          path: finished.path,
          mtimeMs: info.mtimeMs,
          size: result.size,
          sha256: result.sha256,
          chunkSize: result.chunkSize,
          chunkHashes: finished.chunkHashes,
          manifest: result.manifest,
        })
        return finished
      })
      .finally(() => {
        this.#running.delete(key)
        notify()
      })
    let ended = false
    const end = () => {
      ended = true
    }
    done.then(end, end)
    const transfer: Transfer = {
      done,
      async *updates(signal: AbortSignal) {
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
