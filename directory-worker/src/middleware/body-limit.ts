import type { Context } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { createMiddleware } from 'hono/factory'
import { errorBody } from '../errors.ts'

export const KiB = 1024
export const MiB = 1024 * KiB

/**
 * Refuses bodies over `maxSize` with 413 before reading them whole (Content-Length first, then while
 * streaming). A request that states its length is judged by it alone: looking at the body at all made
 * the Node adapter build a whole web Request and stream, a tenth of a heartbeat's time.
 */
export const limitBody = (maxSize: number) => {
  const tooLarge = (c: Context) =>
    c.json(
      errorBody(
        'payload_too_large',
        `The request body is larger than the ${maxSize / KiB} KiB this endpoint accepts.`,
      ),
      413,
    )
  const streamed = bodyLimit({ maxSize, onError: tooLarge })
  return createMiddleware(async (c, next) => {
    const length = c.req.header('content-length')
    if (length === undefined || c.req.header('transfer-encoding') !== undefined) return streamed(c, next)
    if (Number.parseInt(length, 10) > maxSize) return tooLarge(c)
    await next()
  })
}
