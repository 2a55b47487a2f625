import type http2 from 'node:http2'
import { SESSION_WINDOW } from '../wire/flow-windows.ts'
import { whileOpen } from './link-liveness.ts'

/** A stream's window while the relay carries few calls: what a fast transfer needs through one hop. */
export const MAX_STREAM_WINDOW = 1024 * 1024
/** The smallest window a stream is cut down to; below it calls crawl at any distance. */
export const MIN_STREAM_WINDOW = 32 * 1024
/** Calls the relay carries at once in any case. */
const MAX_CALLS = 4096
/**
 * What one link's calls together may be granted: full windows for a downloader or two, smaller ones as
 * its peer's calls grow, so calls nobody reads cannot spend much of the peer's upload filling windows.
 */
const LINK_BYTES = 8 * 1024 * 1024
/** A session that has not acknowledged a window change by then is closed: it would keep the larger one. */
const SETTINGS_ACK_MS = 10_000

/**
 * Bounds what the relay buffers for all the calls it forwards together. Each call may hold up to its
 * stream window on each side (what its peer sent that its caller has not read, or the reverse): Node
 * grants a stream's window again only as the relay reads it, so a reader that never reads costs the
 * relay one window, not more. The windows therefore shrink as the calls grow (halving, to
 * MIN_STREAM_WINDOW), so calls × 2 windows stays under the budget; every open session (callers' and
 * links') is told the new window at once, and a session that will not take it is closed. The calls are
 * capped where even the smallest windows would pass the budget.
 */
export class WindowBudget {
  readonly #budget: number
  readonly #sessions = new Set<http2.Http2Session>()
  /** The window each session was last told, and each link's calls. */
  readonly #told = new WeakMap<http2.Http2Session, number>()
  readonly #linkCalls = new WeakMap<http2.Http2Session, number>()
  /** Sessions told a window that have not acknowledged it yet. */
  readonly #awaitingAck = new WeakSet<http2.Http2Session>()
  #calls = 0
  #window = MAX_STREAM_WINDOW

  constructor(budgetBytes: number) {
    this.#budget = budgetBytes
  }

  /** Calls forwarded right now. */
  get calls(): number {
    return this.#calls
  }

  /** The window every stream gets now. */
  get window(): number {
    return this.#window
  }

  /** A connection's window: room for a few streams at full speed, never more than the budget. */
  get sessionWindow(): number {
    return Math.max(MIN_STREAM_WINDOW, Math.min(SESSION_WINDOW / 2, this.#budget / 4))
  }

  get maxCalls(): number {
    return Math.max(1, Math.min(MAX_CALLS, Math.floor(this.#budget / (2 * MIN_STREAM_WINDOW))))
  }

  /** A session whose streams take the current window, now and as it changes. */
  track(session: http2.Http2Session, createdWith: number) {
    if (session.destroyed) return
    this.#sessions.add(session)
    this.#told.set(session, createdWith)
    session.once('close', () => this.#sessions.delete(session))
    this.#apply(session)
  }

  /** A link now carries this many calls: its windows shrink as they grow (LINK_BYTES). */
  linkCalls(session: http2.Http2Session, calls: number) {
    this.#linkCalls.set(session, calls)
    if (this.#sessions.has(session)) this.#apply(session)
  }

  callStarted() {
    this.#calls++
    this.#resize()
  }

  callEnded() {
    this.#calls--
    this.#resize()
  }

  #resize() {
    let window = this.#window
    while (window > MIN_STREAM_WINDOW && this.#calls * 2 * window > this.#budget) window /= 2
    // Grown back only with a quarter to spare, so calls hovering at a step do not flap every session.
    while (window < MAX_STREAM_WINDOW && this.#calls * 4 * window * 4 <= this.#budget * 3) window *= 2
    if (window === this.#window) return
    this.#window = window
    for (const session of this.#sessions) this.#apply(session)
  }

  /** The relay's window, or less on a link with many calls; changed in halvings, with a quarter to spare. */
  #windowOf(session: http2.Http2Session): number {
    const calls = this.#linkCalls.get(session) ?? 0
    let window = Math.min(this.#told.get(session) ?? this.#window, this.#window)
    while (window > MIN_STREAM_WINDOW && calls * window > LINK_BYTES) window /= 2
    while (window < this.#window && calls * 2 * window * 4 <= LINK_BYTES * 3) window *= 2
    return window
  }

  /**
   * Tells a session its window, one SETTINGS at a time: a change wanted while one is unacknowledged is
   * sent once it is acknowledged (the latest window only). Callers opening and closing calls move the
   * window at will, and Node lets a session have only ten SETTINGS unacknowledged before settings()
   * throws, which would end sessions that did nothing wrong.
   */
  #apply(session: http2.Http2Session) {
    if (this.#awaitingAck.has(session)) return
    // A session closing gracefully (a link its peer replaced on registering again) takes no SETTINGS,
    // so it could never acknowledge one: it keeps the window it has while its streams (live tunnels)
    // finish, and opens no new ones.
    if (session.closed || session.destroyed) return void this.#sessions.delete(session)
    const window = this.#windowOf(session)
    if (this.#told.get(session) === window) return
    this.#told.set(session, window)
    this.#awaitingAck.add(session)
    // A throw from a timer would end the relay: destroy() of a session already over does nothing.
    const deadline = setTimeout(() => session.destroy(), SETTINGS_ACK_MS).unref()
    const acknowledged = () => {
      clearTimeout(deadline)
      this.#awaitingAck.delete(session)
      if (this.#sessions.has(session)) this.#apply(session)
    }
    whileOpen(session, () => session.settings({ initialWindowSize: window }, acknowledged))
  }
}
