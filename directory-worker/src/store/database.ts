import type { InStatement, ResultSet, TransactionMode } from '@libsql/client'

/**
 * What the store asks of a database: one statement, or a batch that commits as one unit (or not at
 * all). A libSQL client is one; on Workers a D1 binding is made one by `d1Database`. No interactive
 * transactions: D1 has none, so no logic sits between the statements of a write.
 */
export type Database = {
  execute(statement: InStatement): Promise<ResultSet>
  batch(statements: InStatement[], mode?: TransactionMode): Promise<ResultSet[]>
}
