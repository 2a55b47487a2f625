import { bodyLimit } from 'hono/body-limit'
import { errorBody } from '../errors.ts'

export const KiB = 1024
export const MiB = 1024 * KiB

/** Refuses bodies over `maxSize` with 413 before reading them whole (Content-Length first, then while streaming). */
export const limitBody = (maxSize: number) =>
  bodyLimit({
    maxSize,
    onError: (c) =>
      c.json(
        errorBody(
          'payload_too_large',
          `The request body is larger than the ${maxSize / KiB} KiB this endpoint accepts.`,
        ),
        413,
      ),
  })
