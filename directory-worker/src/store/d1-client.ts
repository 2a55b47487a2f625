import type { InStatement, InValue, ResultSet, Row } from '@libsql/client'
import type { Database } from './database.ts'

/** The part of Cloudflare's D1 binding used here (its types live in @cloudflare/workers-types). */
export type D1Binding = {
  prepare(sql: string): D1Statement
  batch(statements: D1Statement[]): Promise<D1Result[]>
}
type D1Statement = { bind(...values: unknown[]): D1Statement; all(): Promise<D1Result> }
type D1Result = {
  results?: Record<string, unknown>[]
  meta?: { changes?: number; last_row_id?: number; rows_written?: number }
}

/**
 * A D1 binding as the store's Database: `batch` is D1's own batch, which runs its statements in one
 * implicit transaction (all or nothing), so every write batch keeps its meaning. Rows come back as
 * libSQL shapes them (by column name and by position); D1 has no BLOB columns here to convert.
 * `rowsAffected` is D1's `changes`, which also counts what triggers wrote: the store reads RETURNING.
 */
export function d1Database(d1: D1Binding, onRowsWritten?: (rows: number) => void): Database {
  const counted = (result: D1Result) => {
    if (onRowsWritten && result.meta?.rows_written) onRowsWritten(result.meta.rows_written)
    return result
  }
  const prepare = (statement: InStatement) => {
    const { sql, args } = typeof statement === 'string' ? { sql: statement, args: [] } : statement
    if (args !== undefined && !Array.isArray(args))
      throw new TypeError('D1: named arguments are not supported')
    const prepared = d1.prepare(sql)
    return args && args.length > 0 ? prepared.bind(...args.map(toD1Value)) : prepared
  }
  return {
    async execute(statement) {
      return toResultSet(counted(await prepare(statement).all()))
    },
    async batch(statements) {
      if (statements.length === 0) return []
      return (await d1.batch(statements.map(prepare))).map((result) => toResultSet(counted(result)))
    },
  }
}

function toD1Value(value: InValue): unknown {
  if (typeof value === 'bigint') {
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new RangeError(`D1: ${value} does not fit a JavaScript number`)
    }
    return Number(value)
  }
  if (typeof value === 'boolean') return value ? 1 : 0
  if (value instanceof Date) return value.valueOf()
  return value
}

function toResultSet(result: D1Result): ResultSet {
  const objects = result.results ?? []
  const columns = objects[0] ? Object.keys(objects[0]) : []
  const rows = objects.map((object) => {
    const row: Record<string | number, unknown> = {}
    columns.forEach((column, i) => {
      row[i] = object[column]
      row[column] = object[column]
    })
    Object.defineProperty(row, 'length', { value: columns.length, enumerable: false })
    return row as unknown as Row
  })
  const lastId = result.meta?.last_row_id
  return {
    columns,
    columnTypes: columns.map(() => ''),
    rows,
    rowsAffected: result.meta?.changes ?? 0,
    lastInsertRowid: lastId === undefined ? undefined : BigInt(lastId),
    toJSON: () => ({ columns, rows: objects, rowsAffected: result.meta?.changes ?? 0 }),
  }
}
