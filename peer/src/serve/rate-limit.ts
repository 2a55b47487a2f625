/**
 * Whose call a turn is for, whether a reader waits on it (the Download request's reader_waiting), and
 * which bytes it sends (a file and the offset in it).
 */
export type Turn = { caller: string; readerWaiting: boolean; file?: string; offset?: number }

type Waiter = { bytes: number; turn?: Turn; granted: () => void }

/**
 * A token bucket shared by every stream a daemon serves: --max-upload-rate caps the total. Callers
 * are served in the order they asked, so each of several streams gets its turn: none waits on luck
 * while the others take the budget (a stream left silent long enough is given up by its downloader).
 *
 * One exception: a turn a reader waits on goes before the same caller's turns nobody waits on, so a
 * player's bytes are not queued behind its own background download, and before the same caller's
 * reader turns for later bytes of the same file, so of the chunks a player waits for, the one it needs
 * first comes at the whole rate rather than a share. It never passes another caller's turn that its own
 * displaced turn would not have passed: a caller who flags every call gains nothing.
 */
export class RateLimiter {
  readonly #bytesPerSecond: number
  /** A burst of a quarter second smooths scheduling without exceeding the rate over time. */
  readonly burstBytes: number
  #available: number
  #last = performance.now()
  readonly #queue: Waiter[] = []
  #timer: NodeJS.Timeout | undefined

  constructor(bytesPerSecond: number) {
    this.#bytesPerSecond = bytesPerSecond
    this.burstBytes = bytesPerSecond / 4
    this.#available = this.burstBytes
  }

  /** Waits until `bytes` may be sent, after every caller that asked before; an abort ends the wait. */
  take(bytes: number, signal?: AbortSignal, turn?: Turn): Promise<void> {
    if (signal?.aborted) return Promise.resolve()
    if (this.#queue.length === 0 && this.#grant(bytes)) return Promise.resolve()
    return new Promise((resolve) => {
      const leave = () => {
        const at = this.#queue.indexOf(waiter)
        if (at >= 0) this.#queue.splice(at, 1)
        resolve()
        if (at === 0) this.#reschedule()
      }
      const waiter: Waiter = {
        bytes,
        turn,
        granted: () => {
          signal?.removeEventListener('abort', leave)
          resolve()
        },
      }
      signal?.addEventListener('abort', leave, { once: true })
      const at = this.#placeFor(turn)
      this.#queue.splice(at, 0, waiter)
      if (at === 0) this.#reschedule()
    })
  }

  /**
   * The end of the line, or the place of the caller's first waiting turn that nobody reads from or that
   * sends later bytes of the same file for a reader.
   */
  #placeFor(turn: Turn | undefined): number {
    if (turn?.readerWaiting) {
      const own = this.#queue.findIndex(({ turn: other }) => {
        if (other?.caller !== turn.caller) return false
        if (!other.readerWaiting) return true
        return (
          turn.file !== undefined &&
          other.file === turn.file &&
          (other.offset ?? 0) > (turn.offset ?? Number.POSITIVE_INFINITY)
        )
      })
      if (own >= 0) return own
    }
    return this.#queue.length
  }

  #refill() {
    const now = performance.now()
    this.#available = Math.min(
      this.burstBytes,
      this.#available + ((now - this.#last) / 1000) * this.#bytesPerSecond,
    )
    this.#last = now
  }

  /** Takes `bytes` from the bucket if it holds them, or is full (a message larger than the burst). */
  #grant(bytes: number): boolean {
    this.#refill()
    if (this.#available < bytes && this.#available < this.burstBytes) return false
    this.#available -= bytes
    return true
  }

  #serve() {
    for (let head = this.#queue[0]; head && this.#grant(head.bytes); head = this.#queue[0]) {
      this.#queue.shift()
      head.granted()
    }
    this.#reschedule()
  }

  /** One timer, for the first in line: when the bucket will hold what it asks for. */
  #reschedule() {
    clearTimeout(this.#timer)
    this.#timer = undefined
    const head = this.#queue[0]
    if (!head) return
    this.#refill()
    const missing = Math.min(head.bytes, this.burstBytes) - this.#available
    const wait = Math.max(1, (missing / this.#bytesPerSecond) * 1000)
    this.#timer = setTimeout(() => this.#serve(), wait)
  }
}
