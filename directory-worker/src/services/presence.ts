import type { Context } from 'hono'
import type { Database } from '../store/database.ts'
import { markDown, type PeerRecord, renewLease } from '../store/peers.ts'
import { LeaseRenewals } from './lease-renewals.ts'

/**
 * How far ahead the stored lease of a live peer runs where the lease lives outside storage (Node's
 * memory, a Durable Object). Storage hears of a live peer once in this long (its lastSeen is that
 * coarse) and of every transition at once: the keeper writes a peer down the moment it finds its lease
 * ended, so search, which reads storage alone, does not list it past that.
 */
export const STORED_LEASE_SECONDS = 3600

/**
 * The stored lease's span for a lease of `leaseSeconds`: an hour, or two leases when a lease is longer.
 * It is written again once it ends within a lease, so a span of one lease or less would make every
 * heartbeat a write (an operator's hour-long lease did).
 */
export const storedLeaseSeconds = (leaseSeconds: number) => Math.max(STORED_LEASE_SECONDS, 2 * leaseSeconds)

/** The client's keep-alive text message on a presence socket, and the answer (on Workers the runtime's). */
export const PING = 'ping'
export const PONG = 'pong'
/** Close codes of a presence socket the directory ends: a newer socket took over; the session ended. */
export const REPLACED = 4000
export const SESSION_ENDED = 4001

/** An open peer session, as the auth found it (the username picks a Durable Object shard). */
export type PresenceSession = { sessionId: string; peerId: number; username: string }

/**
 * Where a peer's lease lives and how its transitions reach storage. Search reads only storage
 * (`peers.lease_expires_at > now`), so every keeper keeps that column true: past it, the peer is down.
 */
export interface Presence {
  /** A login with url: the peer is up (and its url and network stored). */
  up(session: PresenceSession, url: string, network: string | undefined): Promise<void>
  /** A heartbeat: true once the lease is renewed; false when the session is not an open peer session. */
  renew(sessionId: string, username: string): Promise<boolean>
  /** A logout: the peer is down at once (and its presence socket closed). */
  down(session: PresenceSession): Promise<void>
  /** The peer's last heartbeat where the keeper knows it better than storage's coarse lastSeen. */
  lastSeen(peerId: number): number | undefined
  /** An account removed (the admin call): its sessions renew nothing from now, its socket is closed. */
  removed(peerId: number, username: string): Promise<void>
  /** `GET /v1/presence`: the WebSocket that keeps the peer up while it is held; undefined where there is none. */
  socket(c: Context, session: PresenceSession): Promise<Response> | undefined
}

type StoredLeaseDeps = {
  db: Database
  now: () => number
  settings: { leaseSeconds: number; leaseSlackSeconds: number }
}

/**
 * The lease as a column of the peer's row: every heartbeat is a write (fewer with LEASE_SLACK_SECONDS),
 * and an expiry needs no write at all. What runs where nothing outlives a request and no Durable
 * Object is bound (Workers on LIBSQL_URL or D1 alone); there is no presence socket there.
 */
export class StoredLeases implements Presence {
  readonly #deps: StoredLeaseDeps
  readonly #renewals: LeaseRenewals

  constructor(deps: StoredLeaseDeps) {
    this.#deps = deps
    this.#renewals = new LeaseRenewals(deps)
  }

  async up({ peerId }: PresenceSession, url: string, network: string | undefined) {
    const { db, now, settings } = this.#deps
    await renewLease(db, peerId, now(), settings.leaseSeconds, url, network)
  }

  renew(sessionId: string) {
    return this.#renewals.renew(sessionId)
  }

  async down({ peerId }: PresenceSession) {
    await markDown(this.#deps.db, peerId, this.#deps.now())
  }

  lastSeen(): undefined {
    return undefined
  }

  async removed() {}

  socket(): undefined {
    return undefined
  }
}

/** A stored peer with the keeper's lastSeen when it knows a later one. */
export const withLastSeen = (presence: Presence, record: PeerRecord): PeerRecord => {
  const seen = presence.lastSeen(record.id)
  return seen !== undefined && seen > record.lastSeen ? { ...record, lastSeen: seen } : record
}
