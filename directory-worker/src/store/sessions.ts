import type { Database } from './database.ts'

/**
 * Opens a session. A peer session (not a viewer's) records the key it logged in with (null: plaintext)
 * and lists its peer with it from now on, in the same write.
 */
export async function openSession(
  db: Database,
  sessionId: string,
  peerId: number,
  now: number,
  viewer = false,
  key: string | null = null,
) {
  const open = {
    sql: 'INSERT INTO sessions (id, peer_id, created_at, viewer, peer_key) VALUES (?, ?, ?, ?, ?)',
    args: [sessionId, peerId, now, viewer ? 1 : 0, viewer ? null : key],
  }
  if (viewer) return void (await db.execute(open))
  await db.batch([open, { sql: 'UPDATE peers SET peer_key = ? WHERE id = ?', args: [key, peerId] }], 'write')
}

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
