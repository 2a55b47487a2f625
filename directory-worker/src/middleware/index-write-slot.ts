import { createMiddleware } from 'hono/factory'
import type { AppEnv } from '../deps.ts'
import { ApiError } from '../errors.ts'

/** Seconds a refused index write is asked to wait: a 30 MiB write takes several seconds. */
const RETRY_AFTER_SECONDS = '5'

/**
 * Lets an index write in only while its account has none in flight and the directory's budget has
 * room (429 with Retry-After otherwise), before the body is read. After requireAuth: the account is
 * the token's. A body without Content-Length is counted at `maxBody`, the most it may grow to.
 */
export const indexWriteSlot = (maxBody: number) =>
  createMiddleware<AppEnv>(async (c, next) => {
    const length = Number.parseInt(c.req.header('content-length') ?? '', 10)
    const bytes =
      Number.isFinite(length) && c.req.header('transfer-encoding') === undefined ? length : maxBody
    const slot = c.get('indexWrites').take(c.get('auth').username, Math.max(1, Math.min(bytes, maxBody)))
    if (typeof slot === 'string') await drain(c.req.raw.body, maxBody)
    if (slot === 'account_busy') {
      throw new ApiError(
        429,
        'index_write_in_progress',
        'Another index write for this account is in progress; retry once it has finished.',
        { 'Retry-After': RETRY_AFTER_SECONDS },
      )
    }
    if (slot === 'full') {
      throw new ApiError(
        429,
        'too_many_index_writes',
        'The directory is taking as many index writes as it allows at once; retry shortly.',
        { 'Retry-After': RETRY_AFTER_SECONDS },
      )
    }
    try {
      await next()
    } finally {
      slot()
    }
  })

/**
 * Reads a refused body to its end, keeping none of it: answered before its body was read, a client
 * still sending (fetch among them) saw the connection reset instead of the 429. Past `maxBytes` it
 * stops reading (the connection then closes under the client).
 */
async function drain(body: ReadableStream<Uint8Array> | null, maxBytes: number) {
  if (!body) return
  let read = 0
  try {
    for await (const part of body) {
      read += part.length
      if (read > maxBytes) break
    }
  } catch {
    // the client went away or sent too much: the answer is the refusal either way
  }
}
