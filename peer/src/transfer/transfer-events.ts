import type { Result } from '../wire/directory-client.ts'
import type { Source, SourceReport } from './source-pool.ts'

/** Where one variant's download stands. */
export type Progress = {
  doneBytes: number
  resumedBytes: number
  activeSources: number
  sources: SourceReport[]
}

/**
 * Where a transfer stands: the variant being fetched, its progress, and among `sources` also the
 * holders of variants that failed before it (dropped, with why).
 */
export type TransferProgress = Progress & { variant: Result }
export type TransferFinished = TransferProgress & { path: string; seconds: number; chunkHashes: Buffer[] }

/** What happens to one variant's sources as its swarm download runs. */
export type SourceEvent =
  /** A source joined the download (it is asked for the manifest, then for chunks). */
  | { type: 'sourceTried'; source: Source }
  /** A source is asked no more, and why (it lied, stalled, went away). */
  | { type: 'sourceDropped'; source: Source; why: string }
  /**
   * A source put us in its upload queue at `place`: not a failure; it is asked again in
   * `retryAfterMs` while the others go on. Place 0: a source that queued us serves us now.
   */
  | { type: 'sourceQueued'; source: Source; place: number; retryAfterMs: number }
  /** A chunk matched the manifest and is on disk. */
  | { type: 'chunkVerified'; index: number; bytes: number; source: Source }

/**
 * What a transfer tells whoever follows it, in order: `started` for each variant tried (the next one
 * after a variant fails), its sources' events, `progress` snapshots, and last `finished` or `failed`.
 */
export type TransferEvent =
  | { type: 'started'; variant: Result }
  | SourceEvent
  | { type: 'progress'; progress: TransferProgress }
  | { type: 'finished'; finished: TransferFinished }
  | { type: 'failed'; error: unknown }

/** Events waiting for one slow follower at most; past it, the oldest chunk events are let go. */
const MAX_QUEUED = 1024

const isFinal = (event: TransferEvent) => event.type === 'finished' || event.type === 'failed'

/**
 * The events of one transfer, to any number of followers: each iterates its own queue, so a slow one
 * holds up nobody. A follower's queue keeps only the latest `progress` (a snapshot supersedes the one
 * before it), and at most MAX_QUEUED events (the oldest `chunkVerified` go first), so a follower that
 * stops reading costs bounded memory.
 */
export class TransferEventStream {
  readonly #followers = new Set<(event: TransferEvent) => void>()
  #final: TransferEvent | undefined

  emit(event: TransferEvent) {
    if (this.#final) return
    if (isFinal(event)) this.#final = event
    for (const follower of this.#followers) follower(event)
  }

  /**
   * `first` (where the transfer stands now), then every event from now on, until the final one (at
   * once when it has already come) or until `signal` aborts.
   */
  async *follow(first: TransferEvent, signal: AbortSignal): AsyncGenerator<TransferEvent> {
    const queue: TransferEvent[] = [first]
    if (this.#final) queue.push(this.#final)
    let wake: (() => void) | undefined
    const follower = (event: TransferEvent) => {
      if (event.type === 'progress') {
        const stale = queue.findIndex((e) => e.type === 'progress')
        if (stale >= 0) queue.splice(stale, 1)
      }
      if (queue.length >= MAX_QUEUED) {
        const oldest = queue.findIndex((e) => e.type === 'chunkVerified')
        queue.splice(Math.max(oldest, 0), 1)
      }
      queue.push(event)
      wake?.()
    }
    const stop = () => wake?.()
    if (!this.#final) this.#followers.add(follower)
    signal.addEventListener('abort', stop, { once: true })
    try {
      for (;;) {
        const event = queue.shift()
        if (signal.aborted) return
        if (event) {
          yield event
          if (isFinal(event)) return
          continue
        }
        await new Promise<void>((resolve) => {
          wake = resolve
        })
        wake = undefined
      }
    } finally {
      this.#followers.delete(follower)
      signal.removeEventListener('abort', stop)
    }
  }
}
