import type { Database } from './database.ts'

/**
 * A number that changes with every write that can change a search's answer (index writes, a peer
 * going down, coming back or moving; see migration 2). Read from the database on every search, so a
 * result cached by any process or Worker isolate is never served after another one changed things.
 */
export async function searchGeneration(db: Database): Promise<number> {
  const result = await db.execute('SELECT n FROM search_generation WHERE id = 1')
  return Number(result.rows[0]?.n ?? 0)
}
