import type http2 from 'node:http2'
import { RateLimiter } from '../serve/rate-limit.ts'
import { type DirectoryClient, DirectoryError } from '../wire/directory-client.ts'
import { PeerLoad } from './call-share.ts'
import { whileOpen } from './link-liveness.ts'
import type { Registrant } from './registration-token.ts'

/** How often each registered peer's session is checked with the directory: the revocation delay. */
export const SESSION_CHECK_MS = 10_000

const CHECKS_AT_ONCE = 16
/** Names remembered as having held a link (past one session check, up); past this many the oldest go. */
const KNOWN_LIMIT = 100_000
/** The share of --max-peers that names the relay has never carried may take: the rest is for known ones. */
const NEWCOMERS_SHARE = 3 / 4

export type RelayedPeer = Registrant & {
  /** The relay's HTTP/2 client session on the connection the peer dialled. */
  session: http2.ClientHttp2Session
  /** Calls forwarded to it right now, over this link and those it replaced. */
  load: PeerLoad
  /** Bytes per second through this peer, both ways together; undefined: unlimited. */
  limiter: RateLimiter | undefined
  /** The address (connection-slots' addressKey: an IPv4 address, an IPv6 /64) its link came from. */
  address: string
}

export type Caps = {
  maxPeers: number
  /** Links from one address (an IPv4 address, an IPv6 /64) at once. */
  maxPeersPerAddress: number
  maxStreamsPerPeer: number
  peerRate: number | undefined
}

/**
 * The peers registered with a relay, by username (case-insensitive, as the directory compares them).
 * A peer registers again as its token renews: the new connection takes over at once and the old one
 * closes once its calls have finished. Every SESSION_CHECK_MS each peer's session is checked with the
 * directory, with the peer's own latest relay token; one that is not up (logged out, revoked, its lease
 * run out) is dropped. Links are capped per address, and a quarter of the places is kept for names the
 * relay carried before (up at a session check), so fresh accounts cannot crowd out known peers.
 */
export class RelayedPeers {
  readonly #peers = new Map<string, RelayedPeer>()
  readonly #caps: Caps
  readonly #directory: DirectoryClient
  readonly #log: (line: string) => void
  readonly #timer: NodeJS.Timeout
  readonly #known = new Set<string>()
  #checking = false

  constructor(caps: Caps, directory: DirectoryClient, log: (line: string) => void) {
    this.#caps = caps
    this.#directory = directory
    this.#log = log
    this.#timer = setInterval(() => void this.checkSessions(), SESSION_CHECK_MS)
    this.#timer.unref()
  }

  get size() {
    return this.#peers.size
  }

  get(username: string): RelayedPeer | undefined {
    return this.#peers.get(username.toLowerCase())
  }

  /** Why a registration of this name from this address would pass a cap, or undefined if it would not. */
  capped(username: string, address: string): string | undefined {
    const key = username.toLowerCase()
    const current = this.#peers.get(key)
    const fromAddress = [...this.#peers.values()].filter(
      (peer) => peer.address === address && peer !== current,
    ).length
    if (fromAddress >= this.#caps.maxPeersPerAddress) {
      return `this relay carries its most peers from your address (${this.#caps.maxPeersPerAddress}); try another`
    }
    if (current) return undefined
    const room = this.#known.has(key)
      ? this.#caps.maxPeers
      : Math.max(1, Math.floor(this.#caps.maxPeers * NEWCOMERS_SHARE))
    if (this.#peers.size >= room)
      return `this relay carries its most peers (${this.#caps.maxPeers}); try another`
    return undefined
  }

  /** Whether a registration's token is newer than the one its name is registered with (or the name is free). */
  newer(registrant: Registrant): boolean {
    const current = this.#peers.get(registrant.username.toLowerCase())
    return !current || registrant.issuedAt >= current.issuedAt
  }

  add(registrant: Registrant, session: http2.ClientHttp2Session, address: string) {
    const key = registrant.username.toLowerCase()
    const previous = this.#peers.get(key)
    const limiter =
      previous?.limiter ?? (this.#caps.peerRate ? new RateLimiter(this.#caps.peerRate) : undefined)
    const load = previous?.load ?? new PeerLoad()
    const peer: RelayedPeer = { ...registrant, session, load, limiter, address }
    this.#peers.set(key, peer)
    session.once('close', () => {
      if (this.#peers.get(key) === peer) {
        this.#peers.delete(key)
        this.#log(`${peer.username} left`)
      }
    })
    // Graceful: calls in flight on the old connection finish there.
    if (previous) whileOpen(previous.session, () => previous.session.close())
    this.#log(`${registrant.username} ${previous ? 'registered again' : 'registered'}`)
  }

  stop() {
    clearInterval(this.#timer)
    for (const peer of this.#peers.values()) peer.session.destroy()
    this.#peers.clear()
  }

  /**
   * One round of session checks (the timer's, every SESSION_CHECK_MS), a few at a time (so a thousand
   * peers are not a thousand requests to the directory at once), never two rounds at once.
   */
  async checkSessions() {
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
    let up = true
    try {
      up = sessionUp(await this.#directory.sessionState(peer.token, peer.sessionId, 5000))
    } catch (err) {
      // Refused (the token lapsed, the directory forgot the session): closed. Unreachable: the peer
      // stays, as peers keep serving callers whose session they cannot check.
      up = err instanceof DirectoryError && (err.unreachable || err.status === 429)
    }
    const key = peer.username.toLowerCase()
    if (this.#peers.get(key) !== peer) return
    if (up) return this.#remember(key)
    this.#peers.delete(key)
    peer.session.destroy()
    this.#log(`${peer.username} dropped: it is no longer up in the directory`)
  }

  #remember(key: string) {
    this.#known.delete(key)
    this.#known.add(key)
    if (this.#known.size > KNOWN_LIMIT) this.#known.delete(this.#known.values().next().value as string)
  }
}

/** Whether the directory lists a session's peer as up (a directory that does not say: its session is open). */
export function sessionUp(state: { open: boolean; up?: boolean }): boolean {
  return state.open && state.up !== false
}
