import type http from 'node:http'
import http2 from 'node:http2'
import { encodeGrpcMessage } from '../wire/grpc-wire.ts'

export type Request = http.IncomingMessage | http2.Http2ServerRequest
export type Response = http.ServerResponse | http2.Http2ServerResponse

/** Either HTTP version's response (their writeHead overloads differ only in ways not used here). */
export function writeHead(res: Response, status: number, headers: http.OutgoingHttpHeaders) {
  ;(res as http.ServerResponse).writeHead(status, headers)
}

/**
 * Headers that end the stream with them. gRPC clients read a status from headers only when those
 * headers end the stream (a "trailers-only" answer), so over HTTP/2 that must be one HEADERS frame with
 * END_STREAM, not headers followed by an empty DATA frame (what writeHead and end() send).
 */
export function answerAndEnd(res: Response, status: number, headers: http.OutgoingHttpHeaders) {
  if (res instanceof http2.Http2ServerResponse) {
    res.stream.respond({ ...headers, ':status': status }, { endStream: true })
  } else {
    writeHead(res, status, headers)
    res.end()
  }
}

/** gRPC and Connect status codes the relay answers with, and the HTTP status Connect pairs each with. */
const REFUSALS = {
  invalid_argument: { grpc: 3, http: 400 },
  resource_exhausted: { grpc: 8, http: 429 },
  unimplemented: { grpc: 12, http: 404 },
  unauthenticated: { grpc: 16, http: 401 },
  unavailable: { grpc: 14, http: 503 },
} as const
export type Refusal = keyof typeof REFUSALS

/**
 * A refusal every client stack reads: a gRPC caller (grpc, grpc-web) gets a trailers-only answer with
 * grpc-status and grpc-message, anyone else a Connect error body with the matching HTTP status.
 */
export function refuse(req: Request, res: Response, code: Refusal, message: string) {
  req.resume()
  if (res.headersSent) return void res.destroy()
  const { grpc, http } = REFUSALS[code]
  const contentType = String(req.headers['content-type'] ?? '')
  if (contentType.startsWith('application/grpc')) {
    answerAndEnd(res, 200, {
      'content-type': contentType.startsWith('application/grpc-web') ? contentType : 'application/grpc',
      'grpc-status': String(grpc),
      'grpc-message': encodeGrpcMessage(message),
    })
  } else {
    writeHead(res, http, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ code, message }))
  }
}
