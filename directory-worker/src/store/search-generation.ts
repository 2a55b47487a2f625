import type { Database } from './database.ts'

/**
 * A number that changes with every write that can change a search's answer (index writes, a peer
 * going down, coming back or moving; see migration 2), and the publish sequence (migration 12), in
 * one read. Read from the database on every search, so a result cached by any process or Worker
 * isolate is never served after another one changed things; the publish number, read before the
 * results, is the answer's cursor: whatever a later write publishes has a greater one.
 */
export async function searchGeneration(db: Database): Promise<{ generation: number; published: number }> {
  const result = await db.execute(
    'SELECT n, (SELECT n FROM publish_sequence WHERE id = 1) AS published FROM search_generation WHERE id = 1',
  )
  const row = result.rows[0]
  return { generation: Number(row?.n ?? 0), published: Number(row?.published ?? 0) }
}
