import { upgradeWebSocket } from '@hono/node-server'
import type { Context } from 'hono'
import type { WebSocket } from 'ws'
import { sessionRevoked } from '../middleware/require-auth.ts'
import type { Database } from '../store/database.ts'
import { markDown, renewLease } from '../store/peers.ts'
import { openSessionPeer } from '../store/sessions.ts'
import { nextTurn } from '../util/next-turn.ts'
import { LeaseRenewals } from './lease-renewals.ts'
import {
  PING,
  PONG,
  type Presence,
  type PresenceSession,
  REPLACED,
  SESSION_ENDED,
  storedLeaseSeconds,
} from './presence.ts'

/** How often expired leases are looked for: a silent peer is down at most this long after its lease. */
export const SWEEP_MS = 500

type Lease = {
  expiresAt: number
  lastSeen: number
  /** The lease_expires_at last written for this peer. */
  stored: number
  /** Open sessions of this peer heartbeats came from (their cache entries go with the lease). */
  sessions: Set<string>
}

type MemoryLeaseDeps = {
  db: Database
  now: () => number
  settings: { leaseSeconds: number }
  log: (line: string) => void
}

/**
 * Leases in the Node process's memory: a heartbeat of a live peer touches no storage. Storage gets
 * the transitions (up at login or at the first heartbeat after a down, down at logout, at a closed
 * presence socket, or when the sweep finds a lease ended) and the stored lease's renewal once an
 * hour. After a restart every peer stored up gets a fresh lease of LEASE_SECONDS (restore()): a
 * peer that heartbeats (every third of a lease) renews it before it ends, so it never flaps down,
 * and one that died before the restart is written down one lease after it.
 */
export class MemoryLeases implements Presence {
  readonly #deps: MemoryLeaseDeps
  /** Writes of the stored lease, grouped per turn; each checks its session is open in the same statement. */
  readonly #writes: LeaseRenewals
  readonly #leases = new Map<number, Lease>()
  /** Open peer sessions by id, as last checked in storage, so a heartbeat needs no read. */
  readonly #sessions = new Map<string, { peerId: number; checkedAt: number }>()
  /** Peers by the second their lease (as then renewed) ends; a renewed lease leaves a stale entry. */
  readonly #due = new Map<number, number[]>()
  /** The presence socket held for a peer (one at most: a newer one replaces it); it keeps the peer up. */
  readonly #sockets = new Map<number, WebSocket>()
  /** Down transitions not yet written, by peer. */
  readonly #downs = new Map<number, { at: number; lastSeen: number }>()
  #restored: Promise<void> | undefined
  #sweeper: ReturnType<typeof setInterval> | undefined
  #stopped = false
  #dataVersion: number | undefined
  #versionLook: Promise<void> | undefined

  constructor(deps: MemoryLeaseDeps) {
    this.#deps = deps
    this.#writes = new LeaseRenewals({
      db: deps.db,
      now: deps.now,
      settings: { leaseSeconds: storedLeaseSeconds(deps.settings.leaseSeconds), leaseSlackSeconds: 0 },
    })
  }

  get #leaseMs() {
    return this.#deps.settings.leaseSeconds * 1000
  }

  get #storedSeconds() {
    return storedLeaseSeconds(this.#deps.settings.leaseSeconds)
  }

  /** Starts sweeping and restores the leases of the peers stored up; call once storage is migrated. */
  async start() {
    this.#sweeper ??= setInterval(() => {
      this.sweep().catch((err) => this.#deps.log(`presence sweep failed: ${err}`))
    }, SWEEP_MS)
    this.#sweeper.unref?.()
    await this.restore()
  }

  /** Stops sweeping; sockets the shutdown closes write nothing (their peers reconnect after a restart). */
  stop() {
    this.#stopped = true
    clearInterval(this.#sweeper)
    this.#sweeper = undefined
  }

  lastSeen(peerId: number): number | undefined {
    return this.#leases.get(peerId)?.lastSeen
  }

  /**
   * Gives every peer stored up a lease of LEASE_SECONDS from now (once; every call waits for it). What
   * the last process knew of their heartbeats died with it: a live peer renews within a third of it.
   */
  restore(): Promise<void> {
    return this.#ready()
  }

  #ready(): Promise<void> {
    this.#restored ??= this.#restore().catch((err) => {
      this.#restored = undefined
      throw err
    })
    return this.#restored
  }

  async #restore() {
    const now = this.#deps.now()
    const stored = await this.#deps.db.execute({
      sql: 'SELECT id, lease_expires_at, last_seen FROM peers WHERE lease_expires_at > ?',
      args: [now],
    })
    for (const row of stored.rows) {
      const peerId = Number(row.id)
      if (this.#leases.has(peerId)) continue
      this.#track(peerId, {
        expiresAt: now + this.#leaseMs,
        lastSeen: Number(row.last_seen),
        stored: Number(row.lease_expires_at),
        sessions: new Set(),
      })
    }
  }

  #track(peerId: number, lease: Lease) {
    this.#leases.set(peerId, lease)
    this.#schedule(peerId, lease.expiresAt)
  }

  /** Renews the peer's lease from `at`, in place (a held socket counts on the same lease). */
  #renewed(peerId: number, sessionId: string, at: number, stored?: number) {
    const lease = this.#leases.get(peerId)
    if (!lease) {
      this.#track(peerId, {
        expiresAt: at + this.#leaseMs,
        lastSeen: at,
        stored: stored ?? at,
        sessions: new Set([sessionId]),
      })
      return
    }
    lease.expiresAt = at + this.#leaseMs
    lease.lastSeen = at
    if (stored !== undefined) lease.stored = stored
    lease.sessions.add(sessionId)
    this.#schedule(peerId, lease.expiresAt)
  }

  #schedule(peerId: number, expiresAt: number) {
    // The second after the lease ends: a sweep that takes the bucket finds the lease ended.
    const second = Math.ceil(expiresAt / 1000)
    const due = this.#due.get(second)
    if (due) due.push(peerId)
    else this.#due.set(second, [peerId])
  }

  async up({ peerId, sessionId }: PresenceSession, url: string, network: string | undefined) {
    await this.#ready()
    const now = this.#deps.now()
    await renewLease(this.#deps.db, peerId, now, this.#storedSeconds, url, network)
    this.#sessions.set(sessionId, { peerId, checkedAt: now })
    this.#renewed(peerId, sessionId, now, now + this.#storedSeconds * 1000)
  }

  async renew(sessionId: string, _username?: string): Promise<boolean> {
    await this.#ready()
    await this.#othersWrote()
    const now = this.#deps.now()
    const peerId = await this.#openPeer(sessionId, now)
    if (peerId === undefined) return false
    const lease = this.#leases.get(peerId)
    if (lease && lease.expiresAt > now && lease.stored - now >= this.#leaseMs) {
      this.#renewed(peerId, sessionId, now)
      return true
    }
    // A transition up, or the stored lease ends within a lease: written, if the session is still open.
    if (!(await this.#writes.renew(sessionId))) {
      this.#sessions.delete(sessionId)
      return false
    }
    const at = this.#deps.now()
    this.#renewed(peerId, sessionId, at, at + this.#storedSeconds * 1000)
    return true
  }

  /**
   * The peer of an open, non-viewer session. Taken from memory when checked within the last lease; a
   * session ended elsewhere (an account removed by the users command) is refused within a lease.
   */
  async #openPeer(sessionId: string, now: number): Promise<number | undefined> {
    const known = this.#sessions.get(sessionId)
    if (known && now - known.checkedAt < this.#leaseMs) return known.peerId
    const open = await openSessionPeer(this.#deps.db, sessionId)
    if (!open || open.viewer) {
      this.#sessions.delete(sessionId)
      return undefined
    }
    this.#sessions.set(sessionId, { peerId: open.peerId, checkedAt: now })
    return open.peerId
  }

  /**
   * Forgets every session checked so far when another process wrote to the database since the last
   * look (`peerdir-directory users remove` ends sessions there). SQLite's data_version moves only
   * for other connections' commits; one look per turn serves every heartbeat of that turn.
   */
  #othersWrote(): Promise<void> {
    this.#versionLook ??= new Promise<void>((resolve) => nextTurn(resolve))
      .then(() => this.#deps.db.execute('PRAGMA data_version'))
      .then((result) => {
        const version = Number(result.rows[0]?.[0])
        if (version !== this.#dataVersion) this.#sessions.clear()
        this.#dataVersion = version
      })
      .catch(() => this.#sessions.clear())
      .finally(() => {
        this.#versionLook = undefined
      })
    return this.#versionLook
  }

  async down({ peerId, sessionId }: PresenceSession) {
    await this.#ready()
    this.#sessions.delete(sessionId)
    this.#forget(peerId)
    this.#closeSocket(peerId, 'logged out')
    await markDown(this.#deps.db, peerId, this.#deps.now())
  }

  async removed(peerId: number) {
    this.#forget(peerId)
    this.#closeSocket(peerId, 'account removed')
  }

  /** Closes the peer's socket without a down write of its own (the caller wrote or needs none). */
  #closeSocket(peerId: number, reason: string) {
    const socket = this.#sockets.get(peerId)
    this.#sockets.delete(peerId)
    socket?.close(SESSION_ENDED, reason)
  }

  #forget(peerId: number) {
    const lease = this.#leases.get(peerId)
    if (!lease) return
    for (const sessionId of lease.sessions) this.#sessions.delete(sessionId)
    this.#leases.delete(peerId)
  }

  /** Writes down every peer whose lease has ended (the timer calls it; tests with a moved clock too). */
  async sweep() {
    await this.#ready()
    const now = this.#deps.now()
    for (const [second, peers] of this.#due) {
      if (second * 1000 > now) continue
      this.#due.delete(second)
      for (const peerId of peers) {
        const lease = this.#leases.get(peerId)
        if (!lease || lease.expiresAt > now || this.#sockets.has(peerId)) continue
        this.#forget(peerId)
        this.#downs.set(peerId, { at: lease.expiresAt, lastSeen: lease.lastSeen })
      }
    }
    await this.#writeDowns()
  }

  /**
   * Writes the pending down transitions, each as of its own time; a failed write stays pending for
   * the next sweep. A row whose lastSeen is later than the one the lease knew was written up again
   * since (a heartbeat after the lease ended), and stays up.
   */
  async #writeDowns() {
    if (this.#downs.size === 0) return
    const downs = [...this.#downs]
    await this.#deps.db.batch(
      downs.map(([peerId, { at, lastSeen }]) => ({
        sql: `UPDATE peers SET lease_expires_at = min(lease_expires_at, ?), last_seen = ?
              WHERE id = ? AND last_seen <= ?`,
        args: [at, lastSeen, peerId, lastSeen],
      })),
      'write',
    )
    for (const [peerId, down] of downs) if (this.#downs.get(peerId) === down) this.#downs.delete(peerId)
  }

  async socket(c: Context, session: PresenceSession): Promise<Response> {
    if (!(await this.renew(session.sessionId, session.username))) throw sessionRevoked()
    const pingMs = Math.max(1000, Math.floor(this.#leaseMs / 3))
    let release: (() => void) | undefined
    let ticker: ReturnType<typeof setInterval> | undefined
    const upgrade = upgradeWebSocket(() => ({
      onOpen: (_event, ws) => {
        const raw = ws.raw as WebSocket
        release = this.#hold(session, raw)
        let answered = true
        const alive = () => {
          answered = true
          this.renew(session.sessionId, session.username)
            .then((open) => open || raw.close(SESSION_ENDED, 'session ended'))
            .catch(() => raw.terminate())
        }
        raw.on('pong', alive)
        // The client's own keep-alive, as on Workers (where the runtime answers it without waking).
        raw.on('message', (data, binary) => {
          if (binary || data.toString() !== PING) return
          raw.send(PONG)
          alive()
        })
        ticker = setInterval(() => {
          // No pong since the last ping: the peer is gone, whatever the socket says.
          if (!answered) return raw.terminate()
          answered = false
          raw.ping()
        }, pingMs)
      },
      onClose: () => {
        clearInterval(ticker)
        release?.()
      },
    }))
    return (await upgrade(c, async () => {})) ?? c.text('', 500)
  }

  /**
   * Holds the socket for the session's peer, replacing (closing) one held before: a daemon that
   * reconnects must not wait for its half-open old socket to time out. Its release takes the peer
   * down at once, unless a newer socket holds it.
   */
  #hold(session: PresenceSession, socket: WebSocket): () => void {
    const lease = this.#leases.get(session.peerId)
    if (!lease) {
      socket.close(SESSION_ENDED, 'session ended')
      return () => {}
    }
    const previous = this.#sockets.get(session.peerId)
    this.#sockets.set(session.peerId, socket)
    previous?.close(REPLACED, 'replaced by a newer presence socket')
    return () => {
      if (this.#sockets.get(session.peerId) !== socket) return
      this.#sockets.delete(session.peerId)
      // A lease since forgotten (logout, a removed account) has nothing to write.
      if (this.#stopped || this.#leases.get(session.peerId) !== lease) return
      this.#forget(session.peerId)
      this.#downs.set(session.peerId, { at: this.#deps.now(), lastSeen: lease.lastSeen })
      this.#writeDowns().catch((err) => this.#deps.log(`presence: a down write failed (retried): ${err}`))
    }
  }
}
