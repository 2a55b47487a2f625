/** An account keeps its slot this long after its last call ends: a download's next call is not a newcomer. */
export const SLOT_HOLD_MS = 2000
/**
 * Calls refused within this of a refusal are the same ask (a downloader sends a few at once). Well
 * under the shortest wait told (a second), so that a caller asking again too soon is told apart.
 */
export const ASK_BURST_MS = 200
/** An ask this much before the time it was told still counts as on time (latency, timers). */
export const EARLY_SLACK_MS = 250
/** A queued account that does not ask again within this after its time leaves the queue. */
export const QUEUE_GRACE_MS = 5000
/** The longest wait a refusal names. */
export const MAX_RETRY_AFTER_MS = 60_000
/** How long the refusal of an early ask is held back: a caller that ignores its time is slowed. */
export const EARLY_PENALTY_MS = 1000
/**
 * An account sent less than SLOT_PROGRESS_BYTES in SLOT_STALL_MS loses its slot, calls in flight or
 * not (the downloader's rule for a source, transfer/chunk-reader.ts): calls that read nothing must not
 * hold the slots, and everyone waiting, for as long as they please.
 */
export const SLOT_PROGRESS_BYTES = 256 * 1024
export const SLOT_STALL_MS = 20_000

export type UploadSlotsOptions = {
  /** Accounts served at once. */
  slots: number
  /** Accounts waiting at most (friends are let in beyond it: there are only as many as configured). */
  maxQueue: number
  /** Usernames that skip the queue (compared without case). */
  friends?: readonly string[]
  /** Milliseconds on a monotonic clock (injected by tests). */
  now?: () => number
}

/** A call that was let in: tell it what it sent, and release it once it ends (however it ends). */
export type SlotTicket = { sent: (bytes: number) => void; release: () => void }

/**
 * What a Download call is told: served (`ticket`), queued at `place` of `waiting` and to ask again in
 * `retryAfterMs` (with the refusal held back `delayMs` for a caller that asked too early), or refused
 * because the queue is full.
 */
export type Admission =
  | { ticket: SlotTicket }
  | { queued: { place: number; waiting: number; retryAfterMs: number; delayMs: number } }
  | { full: { maxQueue: number } }

export type UploadsState = {
  slots: number
  active: { username: string; bytes: number }[]
  queued: { username: string; position: number }[]
}

type Served = { calls: number; bytes: number; idleSince: number; progressAt: number; sinceProgress: number }
type Waiting = { account: string; friend: boolean; askedAt: number; retryAt: number; strikes: number }

/**
 * Upload slots: at most `slots` accounts are served at once, the others wait in a first-come queue and
 * are told their place (their calls refused meanwhile). An account holds its slot while it has calls in
 * flight and SLOT_HOLD_MS after. A slot that frees goes to the head of the queue, kept for it until it
 * asks again (it is told when) or its place expires. Friends go ahead of everyone waiting who is not a
 * friend, never past the slots' count. An account that asks again before its time goes to the back and
 * is told to wait twice as long each time (and hears so only after EARLY_PENALTY_MS).
 *
 * No timers: the state is brought up to date on each ask and each look, from the injected clock.
 */
export class UploadSlots {
  readonly slots: number
  readonly #maxQueue: number
  readonly #friends: Set<string>
  readonly #now: () => number
  readonly #served = new Map<string, Served>()
  readonly #queue: Waiting[] = []

  constructor(options: UploadSlotsOptions) {
    this.slots = options.slots
    this.#maxQueue = options.maxQueue
    this.#friends = new Set((options.friends ?? []).map((name) => name.toLowerCase()))
    this.#now = options.now ?? (() => performance.now())
  }

  /** A Download call of `account` (a username, or the caller's address when it has none). */
  admit(account: string): Admission {
    const now = this.#now()
    this.#expire(now)
    const served = this.#served.get(account)
    if (served) return { ticket: this.#ticket(served) }
    const free = this.slots - this.#served.size
    const at = this.#queue.findIndex((waiting) => waiting.account === account)
    const friend = this.#friends.has(account.toLowerCase())
    if (at < 0) {
      const place = friend ? this.#friendsWaiting() : this.#queue.length
      if (place < free) return { ticket: this.#serve(account, now) }
      if (!friend && this.#queue.length >= this.#maxQueue) return { full: { maxQueue: this.#maxQueue } }
      const waiting = { account, friend, askedAt: now, retryAt: 0, strikes: 0 }
      this.#queue.splice(place, 0, waiting)
      return this.#told(waiting, now, 0)
    }
    if (at < free) {
      this.#queue.splice(at, 1)
      return { ticket: this.#serve(account, now) }
    }
    const waiting = this.#queue[at] as Waiting
    if (now < waiting.askedAt + ASK_BURST_MS) return this.#answer(waiting, waiting.retryAt - now, 0)
    if (now < waiting.retryAt - EARLY_SLACK_MS) {
      // Asked before its time: to the back of the line, and told to wait longer.
      waiting.strikes++
      this.#queue.splice(at, 1)
      this.#queue.push(waiting)
      waiting.askedAt = now
      return this.#told(waiting, now, EARLY_PENALTY_MS)
    }
    waiting.askedAt = now
    return this.#told(waiting, now, 0)
  }

  /** Who is served (bytes sent since they got the slot) and who waits, in order. */
  state(): UploadsState {
    this.#expire(this.#now())
    return {
      slots: this.slots,
      active: [...this.#served].map(([username, { bytes }]) => ({ username, bytes })),
      queued: this.#queue.map(({ account }, i) => ({ username: account, position: i + 1 })),
    }
  }

  #friendsWaiting(): number {
    let count = 0
    while (this.#queue[count]?.friend) count++
    return count
  }

  #serve(account: string, now: number): SlotTicket {
    const served = { calls: 0, bytes: 0, idleSince: now, progressAt: now, sinceProgress: 0 }
    this.#served.set(account, served)
    return this.#ticket(served)
  }

  #ticket(served: Served): SlotTicket {
    served.calls++
    let released = false
    return {
      sent: (bytes) => {
        served.bytes += bytes
        served.sinceProgress += bytes
        if (served.sinceProgress < SLOT_PROGRESS_BYTES) return
        served.sinceProgress = 0
        served.progressAt = this.#now()
      },
      release: () => {
        if (released) return
        released = true
        served.calls--
        served.idleSince = this.#now()
      },
    }
  }

  /** Sets the waiting account's next time from its place and strikes, and answers it. */
  #told(waiting: Waiting, now: number, delayMs: number) {
    const place = this.#queue.indexOf(waiting) + 1
    const wait = Math.min(MAX_RETRY_AFTER_MS, retryAfterMs(place) * 2 ** waiting.strikes)
    waiting.retryAt = now + delayMs + wait
    return this.#answer(waiting, wait, delayMs)
  }

  #answer(waiting: Waiting, retryAfter: number, delayMs: number): Admission {
    const place = this.#queue.indexOf(waiting) + 1
    return {
      queued: { place, waiting: this.#queue.length, retryAfterMs: Math.max(0, retryAfter), delayMs },
    }
  }

  /**
   * Frees the slots held idle past SLOT_HOLD_MS or stalled past SLOT_STALL_MS (the stalled calls go on,
   * outside the count; the account's next call asks anew), and the places of those who stopped asking.
   */
  #expire(now: number) {
    for (const [account, served] of this.#served) {
      const idle = served.calls === 0 && now - served.idleSince >= SLOT_HOLD_MS
      if (idle || now - served.progressAt >= SLOT_STALL_MS) this.#served.delete(account)
    }
    for (let i = this.#queue.length - 1; i >= 0; i--) {
      if (now >= (this.#queue[i] as Waiting).retryAt + QUEUE_GRACE_MS) this.#queue.splice(i, 1)
    }
  }
}

/** The wait a place is told: a second at the head, longer further back (its turn is further off). */
export const retryAfterMs = (place: number) => Math.min(10_000, Math.max(1000, place * 500))
