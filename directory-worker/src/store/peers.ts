import type { InStatement, Row } from '@libsql/client'
import type { Peer } from '../../../contract/schemas.ts'
import type { PeerSort } from '../peer-order.ts'
import type { Database } from './database.ts'
import { countFromRows, readTotals, reconcileCounted } from './network-totals.ts'

export type PeerRecord = {
  id: number
  username: string
  passwordHash: string
  url: string
  /** The SPKI fingerprint its last peer login brought (null: it serves plaintext). */
  key: string | null
  leaseExpiresAt: number
  lastSeen: number
  fileCount: number
  createdAt: number
}

const toRecord = (row: Row): PeerRecord => ({
  id: Number(row.id),
  username: String(row.username),
  passwordHash: String(row.password_hash),
  url: String(row.url),
  key: row.peer_key == null ? null : String(row.peer_key),
  leaseExpiresAt: Number(row.lease_expires_at),
  lastSeen: Number(row.last_seen),
  fileCount: Number(row.file_count),
  createdAt: Number(row.created_at),
})

/** A peer is up while its lease runs; nothing needs to sweep expired leases for this to hold. */
export const toPeer = (record: PeerRecord, now: number): Peer => ({
  username: record.username,
  url: record.url,
  key: record.key,
  state: record.leaseExpiresAt > now ? 'up' : 'down',
  files: record.fileCount,
  lastSeen: new Date(record.lastSeen).toISOString(),
})

export async function findPeer(db: Database, username: string): Promise<PeerRecord | undefined> {
  const result = await db.execute({ sql: 'SELECT * FROM peers WHERE username = ?', args: [username] })
  return result.rows[0] ? toRecord(result.rows[0]) : undefined
}

export async function findPeerById(db: Database, id: number): Promise<PeerRecord | undefined> {
  const result = await db.execute({ sql: 'SELECT * FROM peers WHERE id = ?', args: [id] })
  return result.rows[0] ? toRecord(result.rows[0]) : undefined
}

/** Registers a username on first login; a concurrent registration of the same name keeps the first. */
export async function registerPeer(
  db: Database,
  peer: { username: string; passwordHash: string; url: string; now: number },
): Promise<PeerRecord> {
  await db.execute({
    sql: `INSERT INTO peers (username, password_hash, url, last_seen, created_at) VALUES (?, ?, ?, ?, ?)
          ON CONFLICT (username) DO NOTHING`,
    args: [peer.username, peer.passwordHash, peer.url, peer.now, peer.now],
  })
  const record = await findPeer(db, peer.username)
  if (!record) throw new Error(`peer ${peer.username} vanished right after registration`)
  return record
}

export async function renewLease(
  db: Database,
  peerId: number,
  now: number,
  leaseSeconds: number,
  url?: string,
  network?: string,
) {
  await db.execute({
    sql: `UPDATE peers SET lease_expires_at = ?, last_seen = ?, url = coalesce(?, url),
          network = coalesce(?, network) WHERE id = ?`,
    args: [now + leaseSeconds * 1000, now, url ?? null, network ?? null, peerId],
  })
}

/**
 * Renews the leases of the peers of those sessions that are open peer (not viewer) sessions, in one
 * write transaction, and tells which sessions those were: a logout that lands between a heartbeat's
 * token check and its renewal must not leave the peer up, and the set-based form lets many
 * concurrent heartbeats share one commit.
 */
export async function renewSessionLeases(
  db: Database,
  sessionIds: string[],
  now: number,
  leaseSeconds: number,
  slackSeconds = 0,
): Promise<Set<string>> {
  const open = `SELECT %s FROM sessions WHERE id IN (SELECT value FROM json_each(?1))
                AND revoked_at IS NULL AND viewer = 0`
  const [renewed] = await db.batch(
    [
      { sql: open.replace('%s', 'id'), args: [JSON.stringify(sessionIds)] },
      {
        // A lease that still runs past this heartbeat's own is left as it is (no write; see leaseSlackSeconds).
        sql: `UPDATE peers SET lease_expires_at = ?2 + ?4, last_seen = ?3
              WHERE id IN (${open.replace('%s', 'peer_id')}) AND lease_expires_at < ?2`,
        args: [JSON.stringify(sessionIds), now + leaseSeconds * 1000, now, slackSeconds * 1000],
      },
    ],
    'write',
  )
  return new Set((renewed?.rows ?? []).map((row) => String(row.id)))
}

export async function markDown(db: Database, peerId: number, now: number) {
  await db.execute({
    sql: 'UPDATE peers SET lease_expires_at = 0, last_seen = ? WHERE id = ?',
    args: [now, peerId],
  })
}

/** Whitelisted ORDER BY clauses: sort keys come from the network and never reach SQL as text. */
function orderBy(sort: PeerSort, order: 'asc' | 'desc', now: number): string {
  const direction = order === 'desc' ? 'DESC' : 'ASC'
  const key = {
    username: 'username COLLATE NOCASE',
    state: `(lease_expires_at > ${Math.floor(now)})`,
    files: 'file_count',
    lastSeen: 'last_seen',
  }[sort]
  return `${key} ${direction}, username COLLATE NOCASE`
}

export async function listPeers(
  db: Database,
  options: {
    state?: 'up' | 'down'
    now: number
    limit: number
    offset: number
    sort?: PeerSort
    order?: 'asc' | 'desc'
  },
): Promise<{ peers: PeerRecord[]; total: number }> {
  const filter =
    options.state === 'up'
      ? 'WHERE lease_expires_at > ?'
      : options.state === 'down'
        ? 'WHERE lease_expires_at <= ?'
        : ''
  const filterArgs = options.state ? [options.now] : []
  const [page, count] = await db.batch(
    [
      {
        sql: `SELECT * FROM peers ${filter} ORDER BY ${orderBy(options.sort ?? 'username', options.order ?? 'asc', options.now)}
              LIMIT ? OFFSET ?`,
        args: [...filterArgs, options.limit, options.offset],
      },
      { sql: `SELECT count(*) AS n FROM peers ${filter}`, args: filterArgs },
    ],
    'read',
  )
  return { peers: (page?.rows ?? []).map(toRecord), total: Number(count?.rows[0]?.n ?? 0) }
}

export type NetworkStats = {
  peersUp: number
  peersTotal: number
  files: number
  uniqueFiles: number
  bytes: number
}

/**
 * Files, distinct contents and bytes count what live peers offer right now: the contents and bytes
 * from the totals the writes keep (network-totals.ts), once they are caught up on leases, not a count
 * over every indexed row (half a second at a million files). Catching up is a write, made only when
 * some peer came or went since; a database that takes no writes (read-only) is counted row by row.
 */
export async function networkStats(db: Database, now: number): Promise<NetworkStats> {
  const peersUp: InStatement = {
    sql: `SELECT count(*) AS total, coalesce(sum(lease_expires_at > ?1), 0) AS up,
            coalesce(sum(CASE WHEN lease_expires_at > ?1 THEN file_count ELSE 0 END), 0) AS files,
            coalesce(sum(counted IS NOT (lease_expires_at > ?1)), 0) AS behind
          FROM peers`,
    args: [now],
  }
  let [peers, totals] = await db.batch([peersUp, readTotals], 'read')
  if (Number(peers?.rows[0]?.behind ?? 0) > 0) {
    try {
      ;[, peers, totals] = await db.batch([reconcileCounted(now), peersUp, readTotals], 'write')
    } catch {
      totals = await db.execute(countFromRows(now))
    }
  }
  const p = peers?.rows[0]
  const t = totals?.rows[0]
  return {
    peersUp: Number(p?.up ?? 0),
    peersTotal: Number(p?.total ?? 0),
    files: Number(p?.files ?? 0),
    uniqueFiles: Number(t?.contents ?? 0),
    bytes: Number(t?.bytes ?? 0),
  }
}
