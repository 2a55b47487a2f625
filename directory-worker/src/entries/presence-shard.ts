import {
  PING,
  PONG,
  type PresenceSession,
  REPLACED,
  SESSION_ENDED,
  storedLeaseSeconds,
} from '../services/presence.ts'
import { parseSettings } from '../settings.ts'
import type { Database } from '../store/database.ts'
import { renewLease, renewSessionLeases } from '../store/peers.ts'
import { openSessionPeer } from '../store/sessions.ts'
import { withStorageErrors } from '../store/storage-errors.ts'
import { databaseFor, type WorkerEnv } from './worker-env.ts'

/** workerd's hibernatable WebSocket: what it carries survives the object's eviction. */
type Socket = WebSocket & { serializeAttachment(value: unknown): void; deserializeAttachment(): unknown }
/** The parts of a Durable Object's state used here (types in @cloudflare/workers-types). */
type ShardState = {
  storage: {
    list<T>(options: { prefix: string }): Promise<Map<string, T>>
    put(entries: Record<string, unknown>): Promise<void>
    delete(keys: string[]): Promise<number>
    setAlarm(at: number): Promise<void>
    getAlarm(): Promise<number | null>
  }
  blockConcurrencyWhile<T>(task: () => Promise<T>): Promise<T>
  acceptWebSocket(socket: WebSocket, tags?: string[]): void
  getWebSockets(tag?: string): Socket[]
  setWebSocketAutoResponse(pair: unknown): void
  getWebSocketAutoResponseTimestamp(socket: WebSocket): Date | null
}
const runtime = globalThis as unknown as {
  WebSocketPair: new () => { 0: WebSocket; 1: Socket }
  WebSocketRequestResponsePair: new (request: string, response: string) => unknown
}

/** A heartbeating peer's lease. Memory only, but for `grace` (below). */
type Lease = { expiresAt: number; lastSeen: number; stored: number; grace?: number }
/**
 * A heartbeating peer as the object's own storage keeps it, written at transitions only (up, the hourly
 * renewal of the stored lease, down), so leases outlive an eviction. `grace`: the lease an eviction's
 * restore gave (written then), cleared by the peer's next heartbeat; one found ended means the peer
 * stayed silent through it, and it is written down.
 */
type Kept = { stored: number; lastSeen: number; grace?: number }
/** What a presence socket carries across hibernation. `ended`: closed by the directory (no down of its own). */
type Held = { peerId: number; sessionId: string; openedAt: number; stored: number; ended?: boolean }
type Down = { at: number; lastSeen: number; stored: number }

const kept = (peerId: number) => `lease:${peerId}`

/**
 * A Durable Object holding the leases of the peers whose usernames hash to it (services/sharded-leases.ts).
 * A heartbeat renews a lease in memory and writes nothing; D1 gets the transitions and, per live peer,
 * the stored lease an hour ahead (storedLeaseSeconds). The alarm, set for the earliest lease end,
 * writes ended leases down, as of their end. A presence socket is hibernatable: the client's `ping` is
 * answered by the runtime without waking the object, and the alarm closes a socket silent for a lease.
 */
export class PresenceShard {
  readonly #state: ShardState
  readonly #db: Database
  readonly #leaseMs: number
  readonly #storedSeconds: number
  readonly #leases = new Map<number, Lease>()
  /** Open peer sessions by id, as last read from storage (again once a lease). */
  readonly #sessions = new Map<string, { peerId: number; checkedAt: number }>()
  /** Down transitions not yet written (a failed write is tried again at the next alarm). */
  readonly #downs = new Map<number, Down>()
  #alarmAt: number | undefined

  constructor(state: ShardState, env: WorkerEnv) {
    this.#state = state
    const db = databaseFor(env)
    if (!db) throw new Error('presence shard: no database (DB binding or LIBSQL_URL)')
    this.#db = withStorageErrors(db)
    const { leaseSeconds } = parseSettings(env as Record<string, unknown>)
    this.#leaseMs = leaseSeconds * 1000
    this.#storedSeconds = storedLeaseSeconds(leaseSeconds)
    state.setWebSocketAutoResponse(new runtime.WebSocketRequestResponsePair(PING, PONG))
    void state.blockConcurrencyWhile(() => this.#restore())
  }

  async fetch(request: Request): Promise<Response> {
    try {
      const operation = new URL(request.url).pathname.slice(1)
      if (operation === 'socket') return await this.#open(request)
      const body = (await request.json()) as PresenceSession & { url: string; network?: string }
      if (operation === 'renew') return Response.json({ renewed: await this.#renew(body.sessionId) })
      if (operation === 'up') await this.#up(body)
      else if (operation === 'down') await this.#end(body.peerId, 'logged out', body.sessionId)
      else if (operation === 'removed') await this.#end(body.peerId, 'account removed')
      else return new Response('no such operation', { status: 404 })
      return new Response(null, { status: 204 })
    } catch (err) {
      return new Response(`presence shard failed: ${err}`, { status: 503 })
    }
  }

  /** After an eviction: every kept lease back in memory; one silent through its grace goes down. */
  async #restore() {
    this.#alarmAt = (await this.#state.storage.getAlarm()) ?? undefined
    const now = Date.now()
    const graces: Record<string, Kept> = {}
    for (const [key, record] of await this.#state.storage.list<Kept>({ prefix: 'lease:' })) {
      const peerId = Number(key.slice('lease:'.length))
      if (record.grace !== undefined && record.grace <= now) {
        this.#downs.set(peerId, { at: record.grace, lastSeen: record.lastSeen, stored: record.stored })
        continue
      }
      const grace = record.grace ?? now + this.#leaseMs
      if (record.grace === undefined) graces[key] = { ...record, grace }
      this.#leases.set(peerId, { expiresAt: grace, lastSeen: record.lastSeen, stored: record.stored, grace })
    }
    const keys = Object.keys(graces)
    for (let i = 0; i < keys.length; i += 128) {
      await this.#state.storage.put(Object.fromEntries(keys.slice(i, i + 128).map((k) => [k, graces[k]])))
    }
    if (this.#downs.size > 0) await this.#wakeBy(now)
    for (const lease of this.#leases.values()) await this.#wakeBy(lease.expiresAt)
  }

  async #up(session: PresenceSession & { url: string; network?: string }) {
    const now = Date.now()
    await renewLease(this.#db, session.peerId, now, this.#storedSeconds, session.url, session.network)
    this.#sessions.set(session.sessionId, { peerId: session.peerId, checkedAt: now })
    if (this.#socketsOf(session.peerId).length === 0) await this.#track(session.peerId, now)
  }

  /** A heartbeat: in memory while the lease runs and the stored one is more than a lease ahead. */
  async #renew(sessionId: string): Promise<boolean> {
    const now = Date.now()
    const peerId = await this.#openPeer(sessionId, now)
    if (peerId === undefined) return false
    // Held by a socket: the socket keeps it up (and its stored lease renewed).
    if (this.#socketsOf(peerId).length > 0) return true
    const lease = this.#leases.get(peerId)
    if (lease && lease.expiresAt > now && lease.stored - now >= this.#leaseMs) {
      lease.expiresAt = now + this.#leaseMs
      lease.lastSeen = now
      if (lease.grace !== undefined) {
        lease.grace = undefined
        await this.#state.storage.put({ [kept(peerId)]: { stored: lease.stored, lastSeen: now } })
      }
      return true
    }
    // A transition up, or the hourly renewal: written if the session is still open, in one statement.
    if (!(await renewSessionLeases(this.#db, [sessionId], now, this.#storedSeconds)).has(sessionId)) {
      this.#sessions.delete(sessionId)
      return false
    }
    await this.#track(peerId, now)
    return true
  }

  async #track(peerId: number, at: number) {
    const stored = at + this.#storedSeconds * 1000
    this.#downs.delete(peerId)
    this.#leases.set(peerId, { expiresAt: at + this.#leaseMs, lastSeen: at, stored })
    await this.#state.storage.put({ [kept(peerId)]: { stored, lastSeen: at } })
    await this.#wakeBy(at + this.#leaseMs)
  }

  async #openPeer(sessionId: string, now: number): Promise<number | undefined> {
    const known = this.#sessions.get(sessionId)
    if (known && now - known.checkedAt < this.#leaseMs) return known.peerId
    const open = await openSessionPeer(this.#db, sessionId)
    if (!open || open.viewer) {
      this.#sessions.delete(sessionId)
      return undefined
    }
    this.#sessions.set(sessionId, { peerId: open.peerId, checkedAt: now })
    return open.peerId
  }

  /** Logout (written down here) or a removed account (nothing to write): lease, sessions and socket go. */
  async #end(peerId: number, reason: string, sessionId?: string) {
    for (const [id, known] of this.#sessions) if (known.peerId === peerId) this.#sessions.delete(id)
    this.#leases.delete(peerId)
    this.#downs.delete(peerId)
    await this.#state.storage.delete([kept(peerId)])
    for (const socket of this.#socketsOf(peerId)) this.#close(socket, SESSION_ENDED, reason)
    if (sessionId !== undefined) {
      await this.#db.execute({
        sql: 'UPDATE peers SET lease_expires_at = 0, last_seen = ? WHERE id = ?',
        args: [Date.now(), peerId],
      })
    }
  }

  /**
   * `GET /v1/presence`, its session checked by the Worker: renewed (up, if it was down), then held by
   * a hibernatable socket that replaces any this peer held before (one socket per peer).
   */
  async #open(request: Request): Promise<Response> {
    const session = JSON.parse(request.headers.get('x-presence') ?? '{}') as PresenceSession
    if (!(await this.#renew(session.sessionId))) return new Response('session ended', { status: 401 })
    const now = Date.now()
    const previous = this.#socketsOf(session.peerId)
    const stored = this.#leases.get(session.peerId)?.stored ?? this.#held(previous[0])?.stored ?? now
    for (const socket of previous) this.#close(socket, REPLACED, 'replaced by a newer presence socket')
    if (this.#leases.delete(session.peerId)) await this.#state.storage.delete([kept(session.peerId)])
    const pair = new runtime.WebSocketPair()
    const server = pair[1]
    this.#state.acceptWebSocket(server, [String(session.peerId)])
    const held: Held = { peerId: session.peerId, sessionId: session.sessionId, openedAt: now, stored }
    server.serializeAttachment(held)
    await this.#wakeBy(Math.min(now + this.#leaseMs, stored - this.#leaseMs))
    const protocol = request.headers.get('x-protocol')
    return new Response(null, {
      status: 101,
      webSocket: pair[0],
      headers: protocol ? { 'sec-websocket-protocol': protocol } : {},
    } as ResponseInit)
  }

  /** The peer's sockets the directory has not ended. */
  #socketsOf(peerId: number): Socket[] {
    return this.#state.getWebSockets(String(peerId)).filter((socket) => !this.#held(socket)?.ended)
  }

  #held(socket: Socket | undefined): Held | undefined {
    return (socket?.deserializeAttachment() as Held | null) ?? undefined
  }

  #close(socket: Socket, code: number, reason: string) {
    try {
      const held = this.#held(socket)
      if (held) socket.serializeAttachment({ ...held, ended: true })
      socket.close(code, reason)
    } catch {
      // Already closed.
    }
  }

  /** The peer closed its socket (or it failed): down at once, unless a newer socket holds it. */
  async webSocketClose(socket: Socket) {
    const held = this.#held(socket)
    this.#close(socket, 1000, 'closed')
    if (!held || held.ended || this.#socketsOf(held.peerId).length > 0) return
    const now = Date.now()
    this.#downs.set(held.peerId, { at: now, lastSeen: now, stored: held.stored })
    // A failed write stays pending for the alarm.
    await this.#writeDowns().catch(() => this.#wakeBy(now + 1000))
  }

  async webSocketError(socket: Socket) {
    await this.webSocketClose(socket)
  }

  /** Anything but the auto-answered `ping`: the socket carries no messages, so it is closed. */
  async webSocketMessage(socket: Socket) {
    await this.webSocketClose(socket)
  }

  async alarm() {
    this.#alarmAt = undefined
    const now = Date.now()
    let next = Number.POSITIVE_INFINITY
    for (const [peerId, lease] of this.#leases) {
      if (lease.expiresAt > now) {
        next = Math.min(next, lease.expiresAt)
        continue
      }
      this.#leases.delete(peerId)
      this.#downs.set(peerId, { at: lease.expiresAt, lastSeen: lease.lastSeen, stored: lease.stored })
    }
    const renewals: Socket[] = []
    for (const socket of this.#state.getWebSockets()) {
      const held = this.#held(socket)
      if (!held || held.ended) continue
      const last = Math.max(
        held.openedAt,
        this.#state.getWebSocketAutoResponseTimestamp(socket)?.getTime() ?? 0,
      )
      if (now - last >= this.#leaseMs) {
        // No ping for a lease: the peer is gone, whatever the socket says.
        this.#close(socket, SESSION_ENDED, 'no ping for a lease')
        if (this.#socketsOf(held.peerId).length === 0) {
          this.#downs.set(held.peerId, { at: last + this.#leaseMs, lastSeen: last, stored: held.stored })
        }
        continue
      }
      if (held.stored - now < this.#leaseMs) renewals.push(socket)
      next = Math.min(next, last + this.#leaseMs, Math.max(now + 1000, held.stored - this.#leaseMs))
    }
    for (const socket of renewals) await this.#renewHeld(socket, now)
    await this.#writeDowns()
    if (this.#downs.size > 0) next = Math.min(next, now + 1000)
    if (next < Number.POSITIVE_INFINITY) await this.#wakeBy(next)
  }

  /** A socket's stored lease ends within a lease: renewed an hour ahead, if its session is still open. */
  async #renewHeld(socket: Socket, now: number) {
    const held = this.#held(socket)
    if (!held) return
    if (
      (await renewSessionLeases(this.#db, [held.sessionId], now, this.#storedSeconds)).has(held.sessionId)
    ) {
      socket.serializeAttachment({ ...held, stored: now + this.#storedSeconds * 1000 })
      return
    }
    this.#close(socket, SESSION_ENDED, 'session ended')
    this.#downs.set(held.peerId, { at: now, lastSeen: now, stored: held.stored })
  }

  /**
   * Writes the pending downs, each as of its own time, and drops their kept leases. A row whose stored
   * lease is later than the one this shard knew was written up since (a login racing the alarm) and
   * stays up.
   */
  async #writeDowns() {
    if (this.#downs.size === 0) return
    const downs = [...this.#downs]
    await this.#db.batch(
      downs.map(([peerId, down]) => ({
        sql: `UPDATE peers SET lease_expires_at = min(lease_expires_at, ?), last_seen = max(last_seen, ?)
              WHERE id = ? AND lease_expires_at <= ?`,
        args: [down.at, down.lastSeen, peerId, down.stored],
      })),
      'write',
    )
    for (const [peerId, down] of downs) if (this.#downs.get(peerId) === down) this.#downs.delete(peerId)
    const gone = downs.map(([peerId]) => peerId).filter((peerId) => !this.#leases.has(peerId))
    for (let i = 0; i < gone.length; i += 128)
      await this.#state.storage.delete(gone.slice(i, i + 128).map(kept))
  }

  async #wakeBy(at: number) {
    if (this.#alarmAt !== undefined && this.#alarmAt <= at) return
    this.#alarmAt = at
    await this.#state.storage.setAlarm(at)
  }
}
