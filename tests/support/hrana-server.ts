// TEST STAND-IN FOR TURSO / sqld. A small Hrana-over-HTTP server (protocol v2 pipelines with JSON,
// the endpoint @libsql/client/web speaks by default; see HRANA_3_SPEC in the libsql repository),
// backed by a real libSQL file through the `libsql` engine. Each stream (baton) owns its own
// connection, so a transaction opened in one request stays isolated until its stream commits.
// It exists so the Workers build can be tested against libSQL over HTTP; never deploy it.

import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage } from 'node:http'
import Database from 'libsql'

type Value =
  | { type: 'null' }
  | { type: 'integer'; value: string }
  | { type: 'float'; value: number }
  | { type: 'text'; value: string }
  | { type: 'blob'; base64: string }
type Stmt = {
  sql?: string
  sql_id?: number
  args?: Value[]
  named_args?: { name: string; value: Value }[]
  want_rows?: boolean
}
type Cond =
  | { type: 'ok' | 'error'; step: number }
  | { type: 'not'; cond: Cond }
  | { type: 'and' | 'or'; conds: Cond[] }
  | { type: 'is_autocommit' }
type StreamRequest =
  | { type: 'close' }
  | { type: 'execute'; stmt: Stmt }
  | { type: 'batch'; batch: { steps: { condition?: Cond | null; stmt: Stmt }[] } }
  | { type: 'sequence'; sql?: string; sql_id?: number }
  | { type: 'describe'; sql?: string; sql_id?: number }
  | { type: 'store_sql'; sql_id: number; sql: string }
  | { type: 'close_sql'; sql_id: number }
  | { type: 'get_autocommit' }

type Stream = { db: Database.Database; sqls: Map<number, string>; idle: NodeJS.Timeout | undefined }
class HranaError extends Error {
  readonly code: string
  constructor(message: string, code: string) {
    super(message)
    this.code = code
  }
}

const STREAM_IDLE_MS = 15_000

const decodeValue = (value: Value): unknown => {
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
  }
}

const encodeValue = (value: unknown): Value => {
  if (value === null || value === undefined) return { type: 'null' }
  if (typeof value === 'bigint') return { type: 'integer', value: value.toString() }
  if (typeof value === 'number') {
    return Number.isInteger(value) ? { type: 'integer', value: String(value) } : { type: 'float', value }
  }
  if (typeof value === 'string') return { type: 'text', value }
  if (value instanceof Uint8Array) return { type: 'blob', base64: Buffer.from(value).toString('base64') }
  return { type: 'text', value: String(value) }
}

function sqlOf(stream: Stream, source: { sql?: string; sql_id?: number }): string {
  if (source.sql !== undefined) return source.sql
  const stored = source.sql_id !== undefined ? stream.sqls.get(source.sql_id) : undefined
  if (stored === undefined) throw new HranaError('unknown sql_id', 'SQL_NOT_FOUND')
  return stored
}

function execute(stream: Stream, stmt: Stmt) {
  const prepared = stream.db.prepare(sqlOf(stream, stmt))
  prepared.safeIntegers(true)
  const named = Object.fromEntries(
    (stmt.named_args ?? []).map(({ name, value }) => [name.replace(/^[:@$]/, ''), decodeValue(value)]),
  )
  const args = [...(stmt.args ?? []).map(decodeValue), ...(stmt.named_args?.length ? [named] : [])]
  if (prepared.reader) {
    const columns = prepared.columns()
    const rows = prepared.raw(true).all(...args) as unknown[][]
    return {
      cols: columns.map((c) => ({ name: c.name, decltype: c.type ?? null })),
      rows: rows.map((row) => row.map(encodeValue)),
      affected_row_count: 0,
      last_insert_rowid: null,
    }
  }
  const info = prepared.run(...args)
  return {
    cols: [],
    rows: [],
    affected_row_count: Number(info.changes),
    last_insert_rowid: info.lastInsertRowid === undefined ? null : String(info.lastInsertRowid),
  }
}

function holds(cond: Cond, outcomes: ('ok' | 'error' | undefined)[], stream: Stream): boolean {
  switch (cond.type) {
    case 'ok':
      return outcomes[cond.step] === 'ok'
    case 'error':
      return outcomes[cond.step] === 'error'
    case 'not':
      return !holds(cond.cond, outcomes, stream)
    case 'and':
      return cond.conds.every((c) => holds(c, outcomes, stream))
    case 'or':
      return cond.conds.some((c) => holds(c, outcomes, stream))
    case 'is_autocommit':
      return !stream.db.inTransaction
  }
}

const toError = (err: unknown) => ({
  message: err instanceof Error ? err.message : String(err),
  code: (err as { code?: string }).code ?? 'UNKNOWN',
})

function handle(stream: Stream, request: StreamRequest): unknown {
  switch (request.type) {
    case 'close':
      return { type: 'close' }
    case 'execute':
      return { type: 'execute', result: execute(stream, request.stmt) }
    case 'batch': {
      const outcomes: ('ok' | 'error' | undefined)[] = []
      const stepResults: unknown[] = []
      const stepErrors: unknown[] = []
      for (const step of request.batch.steps) {
        if (step.condition && !holds(step.condition, outcomes, stream)) {
          outcomes.push(undefined)
          stepResults.push(null)
          stepErrors.push(null)
          continue
        }
        try {
          stepResults.push(execute(stream, step.stmt))
          stepErrors.push(null)
          outcomes.push('ok')
        } catch (err) {
          stepResults.push(null)
          stepErrors.push(toError(err))
          outcomes.push('error')
        }
      }
      return { type: 'batch', result: { step_results: stepResults, step_errors: stepErrors } }
    }
    case 'sequence':
      stream.db.exec(sqlOf(stream, request))
      return { type: 'sequence' }
    case 'describe': {
      const prepared = stream.db.prepare(sqlOf(stream, request))
      return {
        type: 'describe',
        result: {
          params: [],
          cols: prepared.reader
            ? prepared.columns().map((c) => ({ name: c.name, decltype: c.type ?? null }))
            : [],
          is_explain: false,
          is_readonly: !/^\s*(insert|update|delete|create|drop|alter|replace|begin|commit|rollback)/i.test(
            sqlOf(stream, request),
          ),
        },
      }
    }
    case 'store_sql':
      stream.sqls.set(request.sql_id, request.sql)
      return { type: 'store_sql' }
    case 'close_sql':
      stream.sqls.delete(request.sql_id)
      return { type: 'close_sql' }
    case 'get_autocommit':
      return { type: 'get_autocommit', is_autocommit: !stream.db.inTransaction }
  }
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

export type HranaServer = { url: string; requests: () => number; close: () => Promise<void> }

/** Serves the libSQL database file at `path` over Hrana HTTP on 127.0.0.1 (port 0 by default). */
export async function startHranaServer(options: {
  path: string
  authToken?: string
  port?: number
}): Promise<HranaServer> {
  const streams = new Map<string, Stream>()
  let requestCount = 0
  const closeStream = (baton: string) => {
    const stream = streams.get(baton)
    if (!stream) return
    clearTimeout(stream.idle)
    streams.delete(baton)
    if (stream.db.inTransaction) stream.db.exec('ROLLBACK')
    stream.db.close()
  }
  const openStream = (): Stream => {
    const db = new Database(options.path)
    db.exec('PRAGMA busy_timeout = 5000')
    return { db, sqls: new Map(), idle: undefined }
  }

  const server = createServer(async (req, res) => {
    requestCount++
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    if (options.authToken && req.headers.authorization !== `Bearer ${options.authToken}`) {
      return reply(401, { error: 'Unauthorized: wrong or missing auth token' })
    }
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    if (req.method === 'GET' && (path === '/v2' || path === '/v3' || path === '/')) return reply(200, {})
    if (req.method !== 'POST' || (path !== '/v2/pipeline' && path !== '/v3/pipeline')) {
      return reply(404, { error: `No such endpoint: ${req.method} ${path}` })
    }
    let body: { baton?: string | null; requests: StreamRequest[] }
    try {
      body = (await readJson(req)) as typeof body
    } catch {
      return reply(400, { error: 'Body is not JSON' })
    }
    let stream: Stream
    if (body.baton) {
      const found = streams.get(body.baton)
      if (!found) return reply(400, { error: 'Unknown or expired baton' })
      streams.delete(body.baton)
      clearTimeout(found.idle)
      stream = found
    } else {
      stream = openStream()
    }
    const results = body.requests.map((request) => {
      try {
        return { type: 'ok', response: handle(stream, request) }
      } catch (err) {
        return { type: 'error', error: toError(err) }
      }
    })
    const closed = body.requests.at(-1)?.type === 'close'
    let baton: string | null = null
    if (closed) {
      if (stream.db.inTransaction) stream.db.exec('ROLLBACK')
      stream.db.close()
    } else {
      baton = randomUUID()
      const next = baton
      stream.idle = setTimeout(() => closeStream(next), STREAM_IDLE_MS)
      streams.set(baton, stream)
    }
    reply(200, { baton, base_url: null, results })
  })
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => requestCount,
    close: async () => {
      for (const baton of [...streams.keys()]) closeStream(baton)
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
