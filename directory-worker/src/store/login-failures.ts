import type { Client } from '@libsql/client'

/** When the username is locked out, the epoch milliseconds at which it may try again. */
export async function lockedUntil(db: Client, username: string, now: number): Promise<number | undefined> {
  const result = await db.execute({
    sql: 'SELECT locked_until FROM login_failures WHERE username = ? AND locked_until > ?',
    args: [username, now],
  })
  const row = result.rows[0]
  return row ? Number(row.locked_until) : undefined
}

/**
 * Counts one failed login. Once `maxFailures` pile up the name is locked for `lockSeconds`,
 * doubling with each further lock-out (capped at an hour) so a patient guesser gains nothing.
 */
export async function recordFailure(
  db: Client,
  username: string,
  now: number,
  limits: { maxFailures: number; lockSeconds: number },
) {
  await db.execute({
    sql: `INSERT INTO login_failures (username, failures, locked_until, updated_at) VALUES (?1, 1, 0, ?2)
          ON CONFLICT (username) DO UPDATE SET
            failures = failures + 1,
            updated_at = ?2,
            locked_until = CASE WHEN (failures + 1) % ?3 = 0
              THEN ?2 + min(3600000, ?4 * 1000 * (1 << min(12, (failures + 1) / ?3 - 1)))
              ELSE locked_until END`,
    args: [username, now, limits.maxFailures, limits.lockSeconds],
  })
}

export async function clearFailures(db: Client, username: string) {
  await db.execute({ sql: 'DELETE FROM login_failures WHERE username = ?', args: [username] })
}
