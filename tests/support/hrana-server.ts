// TEST STAND-IN FOR TURSO / sqld: never deploy it. Hrana over HTTP with JSON (docs/HRANA_3_SPEC.md in the
// libsql repository): `POST /v2/pipeline` (what @libsql/client/web speaks), `/v3/pipeline` and `/v3/cursor`,
// with `GET /v2` and `GET /v3` answering the version probes; no Protobuf, so a probe of `v3-protobuf` gets
// 404 and the client falls back to JSON. It serves a real libSQL file through the `libsql` engine rather
// than a `file:` @libsql/client, which hides its connections: here each stream (baton) owns one, and the
// engine's synchronous calls and `inTransaction` give exact autocommit state. While one stream holds a
// transaction open between requests, the others wait their turn (asynchronously) instead of spinning on
// SQLITE_BUSY, so an interactive transaction stays isolated until it ends.

import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import {
  type Batch,
  cursorEntries,
  type HranaStream,
  handle,
  openStream,
  runBatch,
  type StreamRequest,
  toError,
} from './hrana-stream.ts'

type Stream = HranaStream & { idle?: NodeJS.Timeout }

const STREAM_IDLE_MS = 15_000

async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  const body: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  if (typeof body !== 'object' || body === null) throw new Error('not an object')
  return body as Record<string, unknown>
}

function reply(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

export type HranaServer = { url: string; requests: () => number; close: () => Promise<void> }

/** Serves the libSQL database file at `path` over Hrana HTTP on 127.0.0.1 (port 0 by default). */
export async function startHranaServer(options: {
  path: string
  authToken?: string
  port?: number
}): Promise<HranaServer> {
  const streams = new Map<string, Stream>()
  let holder: Stream | undefined
  let waiting: (() => void)[] = []
  let requestCount = 0
  let closing = false

  const release = () => {
    const woken = waiting
    waiting = []
    for (const wake of woken) wake()
  }
  const dispose = (stream: Stream) => {
    clearTimeout(stream.idle)
    if (stream.db.inTransaction) stream.db.exec('ROLLBACK')
    stream.db.close()
    if (holder === stream) holder = undefined
    release()
  }
  const park = (stream: Stream): string => {
    const baton = randomUUID()
    stream.idle = setTimeout(() => {
      streams.delete(baton)
      dispose(stream)
    }, STREAM_IDLE_MS)
    streams.set(baton, stream)
    if (stream.db.inTransaction) holder = stream
    else if (holder === stream) holder = undefined
    release()
    return baton
  }

  /** The stream a request names, its baton taken off the table (used once); undefined if unknown. */
  const claim = (baton: unknown): Stream | undefined => {
    if (baton === null || baton === undefined) return openStream(options.path)
    const found = typeof baton === 'string' ? streams.get(baton) : undefined
    if (!found) return undefined
    streams.delete(baton as string)
    clearTimeout(found.idle)
    return found
  }

  const pipeline = (stream: Stream, requests: StreamRequest[]) => {
    let closed = false
    const results = requests.map((request) => {
      if (closed) return { type: 'error', error: { message: 'The stream is closed', code: 'STREAM_CLOSED' } }
      if (request?.type === 'close') closed = true
      try {
        return { type: 'ok', response: handle(stream, request) }
      } catch (err) {
        return { type: 'error', error: toError(err) }
      }
    })
    if (closed) dispose(stream)
    return { baton: closed ? null : park(stream), base_url: null, results }
  }

  const server = createServer(async (req, res) => {
    requestCount++
    if (options.authToken && req.headers.authorization !== `Bearer ${options.authToken}`) {
      return reply(res, 401, { message: 'Unauthorized: wrong or missing auth token', code: 'UNAUTHORIZED' })
    }
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    if (req.method === 'GET' && (path === '/v2' || path === '/v3')) return reply(res, 200, {})
    const endpoint = req.method === 'POST' ? path : ''
    if (!['/v2/pipeline', '/v3/pipeline', '/v3/cursor'].includes(endpoint)) {
      return reply(res, 404, { message: `No such endpoint: ${req.method} ${path}`, code: 'NOT_FOUND' })
    }
    let body: Record<string, unknown>
    try {
      body = await readJson(req)
    } catch {
      return reply(res, 400, { message: 'The body is not a JSON object', code: 'PROTOCOL' })
    }
    const isCursor = endpoint === '/v3/cursor'
    if (!isCursor && !Array.isArray(body.requests)) {
      return reply(res, 400, { message: 'A pipeline needs a requests array', code: 'PROTOCOL' })
    }
    try {
      const stream = claim(body.baton)
      if (!stream) return reply(res, 400, { message: 'Unknown or expired baton', code: 'STREAM_EXPIRED' })
      // Wait out another stream's open transaction. Nothing may be awaited between this check and the
      // end of the synchronous work below (park or dispose): that is what makes the turn exclusive.
      while (holder && holder !== stream && !closing) await new Promise<void>((wake) => waiting.push(wake))
      if (closing) {
        dispose(stream)
        return reply(res, 503, { message: 'The server is shutting down', code: 'SHUTTING_DOWN' })
      }
      if (!isCursor) return reply(res, 200, pipeline(stream, body.requests as StreamRequest[]))
      let entries: unknown[]
      try {
        entries = cursorEntries(runBatch(stream, body.batch as Batch))
      } catch (err) {
        entries = [{ type: 'error', error: toError(err) }]
      }
      const head = { baton: park(stream), base_url: null }
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end(`${[head, ...entries].map((line) => JSON.stringify(line)).join('\n')}\n`)
    } catch (err) {
      reply(res, 500, toError(err))
    }
  })
  // Idle connections are kept a minute, as Turso's and sqld's front ends keep them, not Node's 5 s: at
  // 5 s a test that waits out a 5 s lock-out had workerd send its next statement on a connection the
  // stand-in was closing just then ("Network connection lost", so 503 storage_unavailable).
  server.keepAliveTimeout = 60_000
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => requestCount,
    close: async () => {
      closing = true
      for (const [baton, stream] of [...streams]) {
        streams.delete(baton)
        dispose(stream)
      }
      release()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
