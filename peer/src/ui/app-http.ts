import type http from 'node:http'
import { Code, ConnectError } from '@connectrpc/connect'
import type { GatewayRequest } from '../daemon/content-gateway.ts'

/** What both responses share and the app uses. */
export type AppResponse = http.ServerResponse

/** The most a change's JSON body may be. */
const MAX_BODY_BYTES = 64 * 1024

/**
 * Every answer of the app: its own scripts and styles only, never in a frame, never sniffed, never
 * cached, never read by another origin (no CORS header is ever sent; CORP stops no-cors reads).
 */
export const APP_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; media-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
}

export function send(res: AppResponse, status: number, type: string, body: string, extra = {}) {
  res.writeHead(status, {
    ...APP_HEADERS,
    'content-type': type,
    'content-length': String(Buffer.byteLength(body)),
    ...extra,
  })
  res.end(body)
}

export const sendJson = (res: AppResponse, status: number, value: unknown) =>
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value))

export const header = (req: GatewayRequest, name: string): string | undefined => {
  const value = req.headers[name]
  return Array.isArray(value) ? value[0] : value
}

export function cookie(req: GatewayRequest, name: string): string | undefined {
  for (const part of (header(req, 'cookie') ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=')
    if (key === name) return value.join('=')
  }
  return undefined
}

/** A change's body: a JSON object, bounded; anything else is bad input. */
export async function readJson(req: GatewayRequest): Promise<Record<string, unknown>> {
  let size = 0
  const parts: Buffer[] = []
  for await (const part of req as AsyncIterable<Buffer>) {
    size += part.length
    if (size > MAX_BODY_BYTES) throw new ConnectError('the request is too large', Code.InvalidArgument)
    parts.push(part)
  }
  let value: unknown
  try {
    value = JSON.parse(Buffer.concat(parts).toString('utf8') || '{}')
  } catch {
    throw new ConnectError('the request is not JSON', Code.InvalidArgument)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ConnectError('the request is not a JSON object', Code.InvalidArgument)
  return value as Record<string, unknown>
}

const STATUS: Partial<Record<Code, number>> = {
  [Code.InvalidArgument]: 400,
  [Code.NotFound]: 404,
  [Code.FailedPrecondition]: 409,
  [Code.Unauthenticated]: 401,
  [Code.PermissionDenied]: 403,
  [Code.Unavailable]: 503,
}

/** An action's failure as JSON: its message, never a stack. */
export function sendError(res: AppResponse, err: unknown) {
  const error = ConnectError.from(err)
  if (res.headersSent) return void res.destroy()
  sendJson(res, STATUS[error.code] ?? 500, { error: error.rawMessage })
}

export const text = (value: unknown, name: string): string => {
  if (typeof value !== 'string') throw new ConnectError(`${name} must be text`, Code.InvalidArgument)
  return value
}
