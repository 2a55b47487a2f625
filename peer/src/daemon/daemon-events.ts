/** One download as events name it: the content and, once it has ended, where and how. */
export type DownloadFacts = { name: string; sha256: string; size: number }

/**
 * What happens in the daemon, as `peer events` and the `--on-complete` hook see it. `time` is the ISO
 * time the daemon noticed it.
 */
export type DaemonEventBody =
  | ({ type: 'download-started' } & DownloadFacts)
  | ({ type: 'download-progress'; doneBytes: number; activeSources: number } & DownloadFacts)
  /** A source put the download in its upload queue at `queuePosition` (1 is next). */
  | ({ type: 'download-queued'; queuedAt: string; queuePosition: number } & DownloadFacts)
  | ({
      type: 'download-completed'
      path: string
      seconds: number
      /** The usernames that sent bytes of it. */
      sources: string[]
    } & DownloadFacts)
  | ({ type: 'download-failed'; reason: string } & DownloadFacts)
  | ({ type: 'wish-matched'; wishId: string; query: string; path: string } & DownloadFacts)
  | { type: 'upload-served'; username: string; name: string; sha256: string; bytes: number }
  /** `state` the directory session's (up, down, unreachable); `relay` linked or lost with `--relay`. */
  | { type: 'session'; state: string; relay: string; reason: string }

export type DaemonEvent = DaemonEventBody & { time: string }

/** Told to a follower in place of the events it fell too far behind to receive. */
export type Missed = { type: 'missed'; time: string; count: number }

/** Events waiting for one follower at most: past it, the follower is told how many it missed. */
export const MAX_QUEUED_EVENTS = 1024

/**
 * The daemon's one event stream, to any number of followers from the moment they start following. Emit
 * never waits: each follower has its own bounded queue, and one that falls behind loses the events that
 * do not fit, then hears how many before the next one it gets.
 */
export class DaemonEvents {
  readonly #followers = new Set<(event: DaemonEvent) => void>()
  readonly #maxQueued: number

  constructor(maxQueued = MAX_QUEUED_EVENTS) {
    this.#maxQueued = maxQueued
  }

  emit(body: DaemonEventBody) {
    const event = { ...body, time: new Date().toISOString() } as DaemonEvent
    for (const follower of this.#followers) follower(event)
  }

  /** Runs `listener` on each event from now on, in the daemon's turn (it must not block); returns unsubscribe. */
  subscribe(listener: (event: DaemonEvent) => void): () => void {
    this.#followers.add(listener)
    return () => this.#followers.delete(listener)
  }

  /**
   * Every event from now on, until `signal` aborts. Where the follower's queue was full, the events that
   * did not fit are one `missed` entry in their place, with how many they were.
   */
  async *follow(signal: AbortSignal): AsyncGenerator<DaemonEvent | Missed> {
    const queue: (DaemonEvent | Missed)[] = []
    let wake: (() => void) | undefined
    const unsubscribe = this.subscribe((event) => {
      const last = queue.at(-1)
      if (queue.length < this.#maxQueued) queue.push(event)
      else if (last?.type === 'missed') last.count++
      else queue.push({ type: 'missed', time: event.time, count: 1 })
      wake?.()
    })
    const stop = () => wake?.()
    signal.addEventListener('abort', stop, { once: true })
    try {
      while (!signal.aborted) {
        const event = queue.shift()
        if (event) {
          yield event
          continue
        }
        await new Promise<void>((resolve) => {
          wake = resolve
        })
        wake = undefined
      }
    } finally {
      unsubscribe()
      signal.removeEventListener('abort', stop)
    }
  }
}
