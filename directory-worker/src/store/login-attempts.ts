import type { InStatement } from '@libsql/client'
import type { Database } from './database.ts'

/**
 * Login throttling. Every password check is reserved here first, in one write batch, so no number
 * of concurrent requests gets more checks than the budget: a check is admitted only while its
 * buckets are not locked, and the check that fills a bucket locks it. Two buckets per name:
 *
 * - one per client address: `maxFailures` checks, then a lock of `lockSeconds`, doubling with each
 *   further lock (capped at an hour). A success from that address resets it and marks the address
 *   as one the name has logged in from.
 * - one for all addresses the name has not logged in from (`NEW_ADDRESSES`): `maxFailuresPerName`
 *   checks, locked the same way, so a guesser spread over many addresses is bounded too, while
 *   the owner's known addresses keep only their own budget and are never locked out by others.
 *
 * A success releases its reservation; a failure keeps it. Heartbeats never come here.
 */

const NEW_ADDRESSES = '*'
const DAY_MS = 86_400_000

export type LoginLimits = { maxFailures: number; maxFailuresPerName: number; lockSeconds: number }

export type Reservation =
  | { admitted: true; attempt: string; countedForName: boolean }
  | { admitted: false; retryAfterSeconds: number; scope: 'address' | 'name' }

type Attempt = { username: string; address: string; attempt: string; now: number }

/**
 * Counts one check in the bucket `bucket` of the attempt's name when `condition` holds and the bucket
 * is not locked: the first check after a lock ran out starts a new round, the check that brings the
 * round to `max` locks the bucket.
 */
function admitTo(
  bucket: string,
  max: number,
  lockSeconds: number,
  condition: string,
  a: Attempt,
): InStatement {
  const round = 'CASE WHEN locked_until > 0 THEN 1 ELSE failures + 1 END'
  return {
    sql: `INSERT INTO login_attempts (username, address, failures, lockouts, locked_until, attempt, updated_at)
          SELECT ?1, ?2, 1, 1 >= ?5, CASE WHEN 1 >= ?5 THEN ?4 + ?6 * 1000 ELSE 0 END, ?3, ?4 WHERE ${condition}
          ON CONFLICT (username, address) DO UPDATE SET
            failures = ${round},
            locked_until = CASE WHEN ${round} >= ?5
              THEN ?4 + min(3600000, ?6 * 1000 * (1 << min(12, lockouts))) ELSE 0 END,
            lockouts = lockouts + (${round} >= ?5),
            attempt = ?3,
            updated_at = ?4
          WHERE locked_until <= ?4`,
    args: [a.username, bucket, a.attempt, a.now, max, lockSeconds, a.address],
  }
}

/** Reserves one password check for `username` from `address`, or says how long to wait. */
export async function reserveLoginAttempt(
  db: Database,
  username: string,
  address: string,
  now: number,
  limits: LoginLimits,
): Promise<Reservation> {
  const a: Attempt = { username, address, attempt: crypto.randomUUID(), now }
  const ownRow = 'SELECT 1 FROM login_attempts WHERE username = ?1 AND address = ?7'
  const [, , verdict] = await db.batch(
    [
      // New addresses share the name's bucket; this address must not be locked on its own either.
      admitTo(
        NEW_ADDRESSES,
        limits.maxFailuresPerName,
        limits.lockSeconds,
        `NOT EXISTS (${ownRow} AND (known = 1 OR locked_until > ?4))`,
        a,
      ),
      admitTo(
        address,
        limits.maxFailures,
        limits.lockSeconds,
        `EXISTS (${ownRow} AND known = 1)
         OR EXISTS (SELECT 1 FROM login_attempts WHERE username = ?1 AND address = '${NEW_ADDRESSES}' AND attempt = ?3)`,
        a,
      ),
      {
        sql: 'SELECT address, attempt = ?2 AS mine, locked_until FROM login_attempts WHERE username = ?1 AND address IN (?3, ?4)',
        args: [username, a.attempt, address, NEW_ADDRESSES],
      },
    ],
    'write',
  )
  const rows = verdict?.rows ?? []
  const own = rows.find((row) => row.address !== NEW_ADDRESSES)
  const shared = rows.find((row) => row.address === NEW_ADDRESSES)
  if (own && Number(own.mine) === 1) {
    return { admitted: true, attempt: a.attempt, countedForName: Number(shared?.mine) === 1 }
  }
  const ownLock = Number(own?.locked_until ?? 0)
  const scope = ownLock > now ? 'address' : 'name'
  const until = scope === 'address' ? ownLock : Number(shared?.locked_until ?? 0)
  return { admitted: false, retryAfterSeconds: Math.max(1, Math.ceil((until - now) / 1000)), scope }
}

/**
 * After a right password: the address starts over and is known from now on; the name's bucket for
 * new addresses gets this check back (and loses the lock it set, if no check came after it). Rows
 * of addresses that never logged in and have been quiet for a day go.
 */
export async function releaseLoginAttempt(
  db: Database,
  username: string,
  address: string,
  reservation: { attempt: string; countedForName: boolean },
  now: number,
) {
  await db.batch(
    [
      {
        sql: `UPDATE login_attempts SET failures = 0, lockouts = 0, locked_until = 0, known = 1, updated_at = ?3
              WHERE username = ?1 AND address = ?2`,
        args: [username, address, now],
      },
      ...(reservation.countedForName
        ? [
            {
              sql: `UPDATE login_attempts SET failures = max(0, failures - 1),
                      lockouts = lockouts - (attempt = ?3 AND locked_until > 0),
                      locked_until = CASE WHEN attempt = ?3 THEN 0 ELSE locked_until END
                    WHERE username = ?1 AND address = ?2`,
              args: [username, NEW_ADDRESSES, reservation.attempt],
            },
          ]
        : []),
      {
        sql: `DELETE FROM login_attempts WHERE username = ?1 AND known = 0 AND address <> ?2
              AND locked_until < ?3 AND updated_at < ?3 - ?4`,
        args: [username, NEW_ADDRESSES, now, DAY_MS],
      },
    ],
    'write',
  )
}
