import type { Client } from '@libsql/client'

export async function openSession(db: Client, sessionId: string, peerId: number, now: number) {
  await db.execute({
    sql: 'INSERT INTO sessions (id, peer_id, created_at) VALUES (?, ?, ?)',
    args: [sessionId, peerId, now],
  })
}

/** The peer id of an open session, or undefined once it is revoked or unknown. */
export async function openSessionPeer(db: Client, sessionId: string): Promise<number | undefined> {
  const result = await db.execute({
    sql: 'SELECT peer_id FROM sessions WHERE id = ? AND revoked_at IS NULL',
    args: [sessionId],
  })
  const row = result.rows[0]
  return row ? Number(row.peer_id) : undefined
}

export async function revokeSession(db: Client, sessionId: string, now: number) {
  await db.execute({
    sql: 'UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL',
    args: [now, sessionId],
  })
}
