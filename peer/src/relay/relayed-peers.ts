import type http2 from 'node:http2'
import { RateLimiter } from '../serve/rate-limit.ts'
import { type DirectoryClient, DirectoryError } from '../wire/directory-client.ts'
import type { Registrant } from './registration-token.ts'

/** How often each registered peer's session is checked with the directory: the revocation delay. */
export const SESSION_CHECK_MS = 10_000

const CHECKS_AT_ONCE = 16

export type RelayedPeer = Registrant & {
  /** The relay's HTTP/2 client session on the connection the peer dialled. */
  session: http2.ClientHttp2Session
  /** Calls forwarded to it right now, over this link and those it replaced. */
  load: Load
  /** Bytes per second through this peer, both ways together; undefined: unlimited. */
  limiter: RateLimiter | undefined
}

/** Calls in flight to one peer, in all and by caller address (connection-slots' addressKey). */
export type Load = { streams: number; callers: Map<string, number> }

export type Caps = { maxPeers: number; maxStreamsPerPeer: number; peerRate: number | undefined }

/**
 * The peers registered with a relay, by username (case-insensitive, as the directory compares them).
 * A peer registers again as its token renews: the new connection takes over at once and the old one
 * closes once its calls have finished. Every SESSION_CHECK_MS each peer's session is checked with the
 * directory, with the peer's own latest call token; a logged-out, revoked or lapsed one is dropped.
 */
export class RelayedPeers {
  readonly #peers = new Map<string, RelayedPeer>()
  readonly #caps: Caps
  readonly #directory: DirectoryClient
  readonly #log: (line: string) => void
  readonly #timer: NodeJS.Timeout
  #checking = false

  constructor(caps: Caps, directory: DirectoryClient, log: (line: string) => void) {
    this.#caps = caps
    this.#directory = directory
    this.#log = log
    this.#timer = setInterval(() => void this.#checkSessions(), SESSION_CHECK_MS)
    this.#timer.unref()
  }

  get size() {
    return this.#peers.size
  }

  get(username: string): RelayedPeer | undefined {
    return this.#peers.get(username.toLowerCase())
  }

  /** Whether one more peer (not one already registered) would pass the cap. */
  full(username: string): boolean {
    return !this.#peers.has(username.toLowerCase()) && this.#peers.size >= this.#caps.maxPeers
  }

  /** Whether a registration's token is newer than the one its name is registered with (or the name is free). */
  newer(registrant: Registrant): boolean {
    const current = this.#peers.get(registrant.username.toLowerCase())
    return !current || registrant.issuedAt >= current.issuedAt
  }

  add(registrant: Registrant, session: http2.ClientHttp2Session) {
    const key = registrant.username.toLowerCase()
    const previous = this.#peers.get(key)
    const limiter =
      previous?.limiter ?? (this.#caps.peerRate ? new RateLimiter(this.#caps.peerRate) : undefined)
    const load = previous?.load ?? { streams: 0, callers: new Map() }
    const peer: RelayedPeer = { ...registrant, session, load, limiter }
    this.#peers.set(key, peer)
    session.once('close', () => {
      if (this.#peers.get(key) === peer) {
        this.#peers.delete(key)
        this.#log(`${peer.username} left`)
      }
    })
    // Graceful: calls in flight on the old connection finish there.
    previous?.session.close()
    this.#log(`${registrant.username} ${previous ? 'registered again' : 'registered'}`)
  }

  stop() {
    clearInterval(this.#timer)
    for (const peer of this.#peers.values()) peer.session.destroy()
    this.#peers.clear()
  }

  /**
   * One round of session checks, a few at a time (so a thousand peers are not a thousand requests to
   * the directory at once), never two rounds at once.
   */
  async #checkSessions() {
    if (this.#checking) return
    this.#checking = true
    try {
      const queue = [...this.#peers.values()]
      const worker = async () => {
        for (let peer = queue.shift(); peer; peer = queue.shift()) await this.#check(peer)
      }
      await Promise.all(Array.from({ length: CHECKS_AT_ONCE }, worker))
    } finally {
      this.#checking = false
    }
  }

  async #check(peer: RelayedPeer) {
    let open = true
    try {
      open = (await this.#directory.sessionState(peer.token, peer.sessionId, 5000)).open
    } catch (err) {
      // Refused (the token lapsed, the directory forgot the session): closed. Unreachable: the peer
      // stays, as peers keep serving callers whose session they cannot check.
      open = err instanceof DirectoryError && (err.unreachable || err.status === 429)
    }
    if (!open && this.#peers.get(peer.username.toLowerCase()) === peer) {
      this.#peers.delete(peer.username.toLowerCase())
      peer.session.destroy()
      this.#log(`${peer.username} dropped: its session is no longer open`)
    }
  }
}
