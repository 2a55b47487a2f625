import type { DaemonEvent, DaemonEvents } from '../daemon/daemon-events.ts'

export type BoardEntry = {
  sha256: string
  name: string
  size: number
  state: 'running' | 'done' | 'failed'
  doneBytes: number
  activeSources: number
  path: string
  reason: string
  /** Usernames that sent bytes of it, once done. */
  sources: string[]
  /** Sources that have it in their upload queue, and its place there (1 is next). */
  queued: Record<string, number>
}

/** Downloads listed at most: the oldest ended ones go first. */
const MAX_ENTRIES = 200

/**
 * The web app's list of downloads, followed from the daemon's one event stream since the daemon started:
 * what a page that opens later shows before the live events take over. Also counts the times each
 * shared content was served.
 */
export class DownloadBoard {
  readonly #entries = new Map<string, BoardEntry>()
  readonly #served = new Map<string, number>()

  constructor(events: DaemonEvents) {
    events.subscribe((event) => this.#take(event))
  }

  list(): BoardEntry[] {
    return [...this.#entries.values()].reverse()
  }

  served(sha256: string): number {
    return this.#served.get(sha256) ?? 0
  }

  #take(event: DaemonEvent) {
    if (event.type === 'upload-served') {
      this.#served.set(event.sha256, this.served(event.sha256) + 1)
      return
    }
    if (!event.type.startsWith('download-')) return
    const { sha256, name, size } = event as { sha256: string; name: string; size: number }
    const entry = this.#entries.get(sha256) ?? {
      sha256,
      name,
      size,
      state: 'running',
      doneBytes: 0,
      activeSources: 0,
      path: '',
      reason: '',
      sources: [],
      queued: {},
    }
    if (event.type === 'download-started') Object.assign(entry, { state: 'running', reason: '', queued: {} })
    if (event.type === 'download-queued')
      entry.queued = queuedAt(entry.queued, event.queuedAt, event.queuePosition)
    if (event.type === 'download-progress') {
      Object.assign(entry, { doneBytes: event.doneBytes, activeSources: event.activeSources })
    }
    if (event.type === 'download-completed') {
      Object.assign(entry, {
        state: 'done',
        doneBytes: size,
        path: event.path,
        sources: event.sources,
        queued: {},
      })
    }
    if (event.type === 'download-failed')
      Object.assign(entry, { state: 'failed', reason: event.reason, queued: {} })
    // Newest last, so a restarted download moves to the top of the list.
    this.#entries.delete(sha256)
    this.#entries.set(sha256, entry)
    for (const [key, old] of this.#entries) {
      if (this.#entries.size <= MAX_ENTRIES) break
      if (old.state !== 'running') this.#entries.delete(key)
    }
  }
}

/** The sources' queue places after one more `download-queued` (place 0: that source serves it now). */
export function queuedAt(
  queued: Record<string, number>,
  source: string,
  place: number,
): Record<string, number> {
  const { [source]: _, ...others } = queued
  return place > 0 ? { ...others, [source]: place } : others
}
