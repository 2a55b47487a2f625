import type { Account } from '../../../contract/schemas.ts'
import type { Database } from './database.ts'
import { listPeers, type PeerRecord, toPeer } from './peers.ts'

/** Accounts as the operator manages them (`peerdir-directory users`, the admin calls). */

export const toAccount = (record: PeerRecord, now: number): Account => ({
  ...toPeer(record, now),
  createdAt: new Date(record.createdAt).toISOString(),
})

/** Makes an account that has not logged in yet (no url, down); false when the name is taken. */
export async function addAccount(
  db: Database,
  account: { username: string; passwordHash: string; now: number },
): Promise<boolean> {
  const result = await db.execute({
    sql: `INSERT INTO peers (username, password_hash, url, last_seen, created_at) VALUES (?1, ?2, '', ?3, ?3)
          ON CONFLICT (username) DO NOTHING RETURNING id`,
    args: [account.username, account.passwordHash, account.now],
  })
  return result.rows.length === 1
}

/**
 * Removes an account with everything stored about it, in one transaction: its index, its sessions
 * (so every token of it stops working at once) and its login counts. False when there was none.
 */
export async function removeAccount(db: Database, username: string): Promise<boolean> {
  const peer = '(SELECT id FROM peers WHERE username = ?1)'
  const results = await db.batch(
    [
      { sql: `DELETE FROM files WHERE peer_id = ${peer}`, args: [username] },
      { sql: `DELETE FROM sessions WHERE peer_id = ${peer}`, args: [username] },
      { sql: 'DELETE FROM login_attempts WHERE username = ?1', args: [username] },
      // RETURNING, not rowsAffected: D1 counts the rows its triggers and checks touched there too.
      { sql: 'DELETE FROM peers WHERE username = ?1 RETURNING id', args: [username] },
    ],
    'write',
  )
  return (results.at(-1)?.rows.length ?? 0) === 1
}

export async function listAccounts(
  db: Database,
  options: { now: number; limit: number; offset: number },
): Promise<{ users: Account[]; total: number }> {
  const page = await listPeers(db, { ...options, sort: 'username', order: 'asc' })
  return { users: page.peers.map((peer) => toAccount(peer, options.now)), total: page.total }
}
