import type { Context } from 'hono'
import type { Database } from '../store/database.ts'
import { markDown, type PeerRecord, renewLease } from '../store/peers.ts'
import { LeaseRenewals } from './lease-renewals.ts'

/** An open peer session, as the presence socket's auth found it. */
export type PresenceSession = { sessionId: string; peerId: number }

/**
 * Where a peer's lease lives and how its transitions reach storage. Search reads only storage
 * (`peers.lease_expires_at > now`), so every keeper keeps that column true: past it, the peer is down.
 */
export interface Presence {
  /** A login with url: the peer is up (and its url and network stored). */
  up(peerId: number, sessionId: string, url: string, network: string | undefined): Promise<void>
  /** A heartbeat: true once the lease is renewed; false when the session is not an open peer session. */
  renew(sessionId: string): Promise<boolean>
  /** A logout: the peer is down at once. */
  down(peerId: number, sessionId: string): Promise<void>
  /** The peer's last heartbeat where the keeper knows it better than storage's coarse lastSeen. */
  lastSeen(peerId: number): number | undefined
  /** An account removed (the admin call): its sessions renew nothing from now. */
  removed(peerId: number): void
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

  async up(peerId: number, _sessionId: string, url: string, network: string | undefined) {
    const { db, now, settings } = this.#deps
    await renewLease(db, peerId, now(), settings.leaseSeconds, url, network)
  }

  renew(sessionId: string) {
    return this.#renewals.renew(sessionId)
  }

  async down(peerId: number) {
    await markDown(this.#deps.db, peerId, this.#deps.now())
  }

  lastSeen(): undefined {
    return undefined
  }

  removed() {}

  socket(): undefined {
    return undefined
  }
}

/** A stored peer with the keeper's lastSeen when it knows a later one. */
export const withLastSeen = (presence: Presence, record: PeerRecord): PeerRecord => {
  const seen = presence.lastSeen(record.id)
  return seen !== undefined && seen > record.lastSeen ? { ...record, lastSeen: seen } : record
}
