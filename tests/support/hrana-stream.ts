// Part of the TEST STAND-IN FOR TURSO / sqld (see hrana-server.ts): what one Hrana stream does with its
// requests, on one libSQL connection, with values typed as in docs/HRANA_3_SPEC.md of the libsql repository.

import Database from 'libsql'

type Value =
  | { type: 'null' }
  | { type: 'integer'; value: string }
  | { type: 'float'; value: number }
  | { type: 'text'; value: string }
  | { type: 'blob'; base64: string }
type Stmt = {
  sql?: string | null
  sql_id?: number | null
  args?: Value[]
  named_args?: { name: string; value: Value }[]
  want_rows?: boolean
}
type Cond =
  | { type: 'ok' | 'error'; step: number }
  | { type: 'not'; cond: Cond }
  | { type: 'and' | 'or'; conds: Cond[] }
  | { type: 'is_autocommit' }
export type Batch = { steps: { condition?: Cond | null; stmt: Stmt }[] }
type SqlSource = { sql?: string | null; sql_id?: number | null }
export type StreamRequest =
  | { type: 'close' }
  | { type: 'execute'; stmt: Stmt }
  | { type: 'batch'; batch: Batch }
  | ({ type: 'sequence' } & SqlSource)
  | ({ type: 'describe' } & SqlSource)
  | { type: 'store_sql'; sql_id: number; sql: string }
  | { type: 'close_sql'; sql_id: number }
  | { type: 'get_autocommit' }
type Col = { name: string | null; decltype: string | null }
type StmtResult = {
  cols: Col[]
  rows: Value[][]
  affected_row_count: number
  last_insert_rowid: string | null
}
export type HranaErrorBody = { message: string; code: string }
type StepOutcome = { result: StmtResult } | { error: HranaErrorBody } | undefined

/** One stream's connection and the SQL texts stored on it (their scope is the stream). */
export type HranaStream = { db: Database.Database; sqls: Map<number, string> }

class HranaError extends Error {
  readonly code: string
  constructor(message: string, code: string) {
    super(message)
    this.code = code
  }
}

function decodeValue(value: Value): unknown {
  switch (value.type) {
    case 'null':
      return null
    case 'integer':
      return BigInt(value.value)
    case 'float':
      return value.value
    case 'text':
      return value.value
    case 'blob':
      return Buffer.from(value.base64, 'base64')
    default:
      throw new HranaError(
        `Unknown value type ${JSON.stringify((value as { type?: unknown }).type)}`,
        'PROTOCOL',
      )
  }
}

// Statements run with safe integers, so every INTEGER arrives as a bigint: a number is always a REAL,
// even one with no fractional part.
function encodeValue(value: unknown): Value {
  if (value === null || value === undefined) return { type: 'null' }
  if (typeof value === 'bigint') return { type: 'integer', value: value.toString() }
  if (typeof value === 'number') return { type: 'float', value }
  if (typeof value === 'string') return { type: 'text', value }
  if (value instanceof Uint8Array) return { type: 'blob', base64: Buffer.from(value).toString('base64') }
  return { type: 'text', value: String(value) }
}

// Always one array or one object: the engine reads a lone argument that is null or a Buffer as a map of
// named parameters. Positional values go under their 1-based index when names are mixed in.
function bindings(stmt: Stmt): unknown[] | Record<string, unknown> {
  const positional = (stmt.args ?? []).map(decodeValue)
  if (!stmt.named_args?.length) return positional
  const bound: Record<string, unknown> = {}
  positional.forEach((value, index) => {
    bound[index + 1] = value
  })
  for (const { name, value } of stmt.named_args) bound[name.replace(/^[:@$]/, '')] = decodeValue(value)
  return bound
}

function sqlOf(stream: HranaStream, source: SqlSource): string {
  if (typeof source.sql === 'string') return source.sql
  const stored = typeof source.sql_id === 'number' ? stream.sqls.get(source.sql_id) : undefined
  if (stored === undefined) {
    throw new HranaError(`No SQL text stored as sql_id ${source.sql_id}`, 'SQL_NOT_FOUND')
  }
  return stored
}

function connectionCounters(db: Database.Database) {
  const counters = db.prepare('SELECT changes(), total_changes(), last_insert_rowid()')
  counters.safeIntegers(true)
  // all(), not get(): a statement left unfinished would keep the connection's read lock after the request.
  const [[changes, total, rowid]] = counters.raw(true).all([]) as [[bigint, bigint, bigint]]
  return { changes: Number(changes), total, rowid: rowid.toString() }
}

function execute(stream: HranaStream, stmt: Stmt): StmtResult {
  const prepared = stream.db.prepare(sqlOf(stream, stmt))
  prepared.safeIntegers(true)
  const params = bindings(stmt)
  if (!prepared.reader) {
    const info = prepared.run(params)
    const { rowid } = connectionCounters(stream.db)
    return { cols: [], rows: [], affected_row_count: Number(info.changes), last_insert_rowid: rowid }
  }
  // A reader may still write (INSERT ... RETURNING): total_changes() tells whether it did.
  const before = connectionCounters(stream.db).total
  const rows = prepared.raw(true).all(params) as unknown[][]
  const after = connectionCounters(stream.db)
  return {
    cols: prepared.columns().map((c) => ({ name: c.name, decltype: c.type ?? null })),
    rows: stmt.want_rows === false ? [] : rows.map((row) => row.map(encodeValue)),
    affected_row_count: after.total === before ? 0 : after.changes,
    last_insert_rowid: after.rowid,
  }
}

function holds(cond: Cond, outcomes: StepOutcome[], stream: HranaStream): boolean {
  switch (cond.type) {
    case 'ok':
    case 'error': {
      const outcome = outcomes[cond.step]
      return outcome !== undefined && (cond.type === 'ok' ? 'result' in outcome : 'error' in outcome)
    }
    case 'not':
      return !holds(cond.cond, outcomes, stream)
    case 'and':
      return cond.conds.every((c) => holds(c, outcomes, stream))
    case 'or':
      return cond.conds.some((c) => holds(c, outcomes, stream))
    case 'is_autocommit':
      return !stream.db.inTransaction
    default:
      throw new HranaError(
        `Unknown condition ${JSON.stringify((cond as { type?: unknown }).type)}`,
        'PROTOCOL',
      )
  }
}

export const toError = (err: unknown): HranaErrorBody => ({
  message: err instanceof Error ? err.message : String(err),
  code: (err as { code?: unknown } | null)?.code ? String((err as { code: unknown }).code) : 'UNKNOWN',
})

/** Runs the steps in order; a skipped step (condition false) leaves `undefined`. */
export function runBatch(stream: HranaStream, batch: Batch): StepOutcome[] {
  if (!Array.isArray(batch?.steps)) throw new HranaError('A batch needs a steps array', 'PROTOCOL')
  const outcomes: StepOutcome[] = []
  for (const step of batch.steps) {
    if (step.condition && !holds(step.condition, outcomes, stream)) {
      outcomes.push(undefined)
      continue
    }
    try {
      outcomes.push({ result: execute(stream, step.stmt) })
    } catch (err) {
      outcomes.push({ error: toError(err) })
    }
  }
  return outcomes
}

export function handle(stream: HranaStream, request: StreamRequest): unknown {
  switch (request.type) {
    case 'close':
      return { type: 'close' }
    case 'execute':
      return { type: 'execute', result: execute(stream, request.stmt) }
    case 'batch': {
      const outcomes = runBatch(stream, request.batch)
      return {
        type: 'batch',
        result: {
          step_results: outcomes.map((o) => (o && 'result' in o ? o.result : null)),
          step_errors: outcomes.map((o) => (o && 'error' in o ? o.error : null)),
        },
      }
    }
    case 'sequence':
      stream.db.exec(sqlOf(stream, request))
      return { type: 'sequence' }
    case 'describe': {
      const sql = sqlOf(stream, request)
      const prepared = stream.db.prepare(sql)
      const cols = prepared.reader ? prepared.columns() : []
      return {
        type: 'describe',
        result: {
          // The engine does not expose parameter names; no client here relies on them.
          params: [],
          cols: cols.map((c) => ({ name: c.name, decltype: c.type ?? null })),
          is_explain: /^\s*explain\b/i.test(sql),
          is_readonly: prepared.reader && /^\s*(select|values|explain)\b/i.test(sql),
        },
      }
    }
    case 'store_sql':
      if (stream.sqls.has(request.sql_id)) {
        throw new HranaError(`sql_id ${request.sql_id} is already in use`, 'PROTOCOL')
      }
      stream.sqls.set(request.sql_id, request.sql)
      return { type: 'store_sql' }
    case 'close_sql':
      stream.sqls.delete(request.sql_id)
      return { type: 'close_sql' }
    case 'get_autocommit':
      return { type: 'get_autocommit', is_autocommit: !stream.db.inTransaction }
    default:
      throw new HranaError(
        `Unknown request ${JSON.stringify((request as { type?: unknown }).type)}`,
        'PROTOCOL',
      )
  }
}

export function cursorEntries(outcomes: StepOutcome[]): unknown[] {
  return outcomes.flatMap((outcome, step): unknown[] => {
    if (outcome === undefined) return []
    if ('error' in outcome) return [{ type: 'step_error', step, error: outcome.error }]
    const { cols, rows, affected_row_count, last_insert_rowid } = outcome.result
    return [
      { type: 'step_begin', step, cols },
      ...rows.map((row) => ({ type: 'row', row })),
      { type: 'step_end', affected_row_count, last_insert_rowid },
    ]
  })
}

/** A fresh connection to the database file, for one stream. */
export function openStream(path: string): HranaStream {
  const db = new Database(path)
  db.exec('PRAGMA busy_timeout = 5000')
  return { db, sqls: new Map() }
}
