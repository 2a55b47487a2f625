import type { Database } from './database.ts'

export async function openSession(
  db: Database,
  sessionId: string,
  peerId: number,
  now: number,
  viewer = false,
) {
  await db.execute({
    sql: 'INSERT INTO sessions (id, peer_id, created_at, viewer) VALUES (?, ?, ?, ?)',
    args: [sessionId, peerId, now, viewer ? 1 : 0],
  })
}

/** The peer of an open session and whether it is a viewer session; undefined once revoked or unknown. */
export async function openSessionPeer(
  db: Database,
  sessionId: string,
): Promise<{ peerId: number; viewer: boolean } | undefined> {
  const result = await db.execute({
    sql: 'SELECT peer_id, viewer FROM sessions WHERE id = ? AND revoked_at IS NULL',
    args: [sessionId],
  })
  const row = result.rows[0]
  return row ? { peerId: Number(row.peer_id), viewer: Number(row.viewer) === 1 } : undefined
}

export async function revokeSession(db: Database, sessionId: string, now: number) {
  await db.execute({
    sql: 'UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL',
    args: [now, sessionId],
  })
}
