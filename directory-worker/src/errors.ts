import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { ErrorBody } from '../../contract/api-types.ts'
import type { AppEnv } from './deps.ts'
import { StorageError } from './store/storage-errors.ts'

/** The one error type handlers throw; app.onError turns it into the contract's error body. */
export class ApiError extends Error {
  readonly status: ContentfulStatusCode
  readonly code: string
  readonly headers: Record<string, string>

  constructor(
    status: ContentfulStatusCode,
    code: string,
    message: string,
    headers: Record<string, string> = {},
  ) {
    super(message)
    this.status = status
    this.code = code
    this.headers = headers
  }
}

export const errorBody = (code: string, message: string): ErrorBody => ({ error: { code, message } })

const codeForStatus: Record<number, string> = {
  400: 'invalid_request',
  401: 'unauthorized',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'too_many_requests',
  503: 'storage_unavailable',
}

export function toErrorResponse(err: Error, c: Context<AppEnv>) {
  if (err instanceof ApiError) {
    for (const [name, value] of Object.entries(err.headers)) c.header(name, value)
    return c.json(errorBody(err.code, err.message), err.status)
  }
  if (err instanceof HTTPException) {
    const status = err.status as ContentfulStatusCode
    const message =
      status === 400 && /json/i.test(err.message)
        ? 'The request body is not valid JSON.'
        : err.message || 'The request was refused.'
    return c.json(errorBody(codeForStatus[status] ?? 'http_error', message), status)
  }
  const deps = c.get('deps')
  const requestId = c.get('requestId') ?? '-'
  deps?.log(`error request=${requestId} ${err.name}: ${err.message}`)
  if (err instanceof StorageError) {
    c.header('Retry-After', '5')
    return c.json(
      errorBody('storage_unavailable', 'The directory storage is unavailable; try again shortly.'),
      503,
    )
  }
  return c.json(
    errorBody('internal_error', `Unexpected error; quote request id ${requestId} to the operator.`),
    500,
  )
}

export function notFound(c: Context<AppEnv>) {
  return c.json(errorBody('not_found', `No route for ${c.req.method} ${new URL(c.req.url).pathname}.`), 404)
}
