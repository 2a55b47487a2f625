import type { InStatement } from '@libsql/client'

/**
 * Brings `peers.counted` up to date with the leases at `now` (migration 11): the peers that came up
 * have their rows counted in `contents` and the network totals, the ones that went down (a logout,
 * or a lease that ran out, which writes nothing) uncounted, by the triggers on that column. Run by
 * every read of the totals, so they count exactly the peers up at that moment; its cost is the peers
 * table's rows plus the rows of the peers that changed since the last read.
 */
export const reconcileCounted = (now: number): InStatement => ({
  sql: 'UPDATE peers SET counted = (lease_expires_at > ?1) WHERE counted IS NOT (lease_expires_at > ?1)',
  args: [now],
})

export const readTotals: InStatement = 'SELECT contents, bytes FROM network_totals WHERE id = 1'

/** The totals counted over every live row, as they were before they were kept: for a read-only database. */
export const countFromRows = (now: number): InStatement => ({
  sql: `SELECT count(*) AS contents, coalesce(sum(size), 0) AS bytes FROM (
          SELECT f.sha256, max(f.size) AS size FROM files f INDEXED BY files_sha256
            JOIN peers p ON p.id = f.peer_id AND f.generation = p.index_generation
          WHERE p.lease_expires_at > ? GROUP BY f.sha256)`,
  args: [now],
})
