import type http from 'node:http'
import http2 from 'node:http2'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { decodeJwt } from 'jose'
import type { RateLimiter } from '../serve/rate-limit.ts'
import { addressKey } from '../wire/connection-slots.ts'
import type { RelayedPeer, RelayedPeers } from './relayed-peers.ts'

type Request = http.IncomingMessage | http2.Http2ServerRequest
type Response = http.ServerResponse | http2.Http2ServerResponse

/** Either HTTP version's response (their writeHead overloads differ only in ways not used here). */
export function writeHead(res: Response, status: number, headers: http.OutgoingHttpHeaders) {
  ;(res as http.ServerResponse).writeHead(status, headers)
}

/** A forwardable path: PeerService's own methods, under a relayed peer's URL or bare (then the token names the peer). */
const CALL_PATH =
  /^(?:\/relayed\/([A-Za-z0-9._-]{1,64}))?(\/peerdir\.v1\.PeerService\/(?:GetInfo|GetManifest|Download|Upload))$/

/** Hop-by-hop and pseudo headers, which belong to each connection and never cross the relay. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'host',
  'http2-settings',
])
const crossing = (name: string) => !name.startsWith(':') && !HOP_BY_HOP.has(name)

/** gRPC and Connect status codes the relay answers with, and the HTTP status Connect pairs each with. */
const REFUSALS = {
  invalid_argument: { grpc: 3, http: 400 },
  not_found: { grpc: 5, http: 404 },
  resource_exhausted: { grpc: 8, http: 429 },
  unimplemented: { grpc: 12, http: 404 },
  unavailable: { grpc: 14, http: 503 },
} as const
type Refusal = keyof typeof REFUSALS

/**
 * A refusal every client stack reads: a gRPC caller (grpc, grpc-web) gets a trailers-only answer with
 * grpc-status and grpc-message, anyone else a Connect error body with the matching HTTP status.
 */
export function refuse(req: Request, res: Response, code: Refusal, message: string) {
  if (res.headersSent) return void res.destroy()
  const { grpc, http } = REFUSALS[code]
  const contentType = String(req.headers['content-type'] ?? '')
  if (contentType.startsWith('application/grpc')) {
    writeHead(res, 200, {
      'content-type': contentType.startsWith('application/grpc-web') ? contentType : 'application/grpc',
      'grpc-status': String(grpc),
      'grpc-message': encodeURIComponent(message),
    })
    res.end()
  } else {
    writeHead(res, http, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ code, message }))
  }
  req.resume()
}

/** The peer a call is for: named by the relayed URL's path, or by the audience of its call token. */
function target(req: Request, named: string | undefined): { name?: string; conflict?: string } {
  const token = /^Bearer\s+(\S{1,8192})$/i.exec(String(req.headers.authorization ?? ''))?.[1]
  let audience: string | undefined
  try {
    const aud = token ? decodeJwt(token).aud : undefined
    audience = typeof aud === 'string' ? aud : undefined
  } catch {
    // not a JWT: the peer behind will refuse it itself
  }
  if (named && audience && named.toLowerCase() !== audience.toLowerCase()) {
    return { conflict: `this call token is for ${audience}, but the call is addressed to ${named}` }
  }
  return { name: named ?? audience }
}

/**
 * Forwards one call to the relayed peer it names, over that peer's registered connection: headers and
 * body as they come, the answer and its trailers as they come back, each side's flow control pacing the
 * other (and the peer's rate cap pacing both). The relay reads no message and stores nothing.
 */
export async function forward(req: Request, res: Response, peers: RelayedPeers, maxStreams: number) {
  const path = CALL_PATH.exec((req.url ?? '').split('?')[0] ?? '')
  if (!path) {
    return refuse(req, res, 'unimplemented', 'this relay forwards only peerdir.v1.PeerService calls')
  }
  const { name, conflict } = target(req, path[1])
  if (conflict) return refuse(req, res, 'invalid_argument', conflict)
  if (!name) {
    return refuse(
      req,
      res,
      'invalid_argument',
      'name the peer: call <relay>/relayed/<username>/… or present a call token for it',
    )
  }
  const peer = peers.get(name)
  if (!peer || peer.session.closed || peer.session.destroyed) {
    return refuse(req, res, 'unavailable', `${name} is not connected to this relay`)
  }
  if (peer.load.streams >= maxStreams) {
    return refuse(
      req,
      res,
      'resource_exhausted',
      `this relay already carries ${maxStreams} calls to ${peer.username}; try again shortly`,
    )
  }
  // One caller (an address, an IPv6 /64) gets a share of a peer's calls, so it cannot take them all.
  const caller = addressKey(req.socket.remoteAddress ?? '')
  const fromCaller = peer.load.callers.get(caller) ?? 0
  if (fromCaller >= callerShare(maxStreams)) {
    return refuse(
      req,
      res,
      'resource_exhausted',
      `you already have ${fromCaller} calls to ${peer.username} through this relay; wait for one to end`,
    )
  }
  peer.load.streams++
  peer.load.callers.set(caller, fromCaller + 1)
  try {
    await relay(req, res, peer, path[2] as string)
  } finally {
    peer.load.streams--
    const left = (peer.load.callers.get(caller) ?? 1) - 1
    if (left > 0) peer.load.callers.set(caller, left)
    else peer.load.callers.delete(caller)
  }
}

/** A downloader keeps about five calls open to each source; a quarter of a peer's calls is room for three times that. */
const callerShare = (maxStreams: number) => Math.max(1, Math.ceil(maxStreams / 4))

/** A forwarded call in which no byte moved either way for this long is cancelled: it only holds a slot. */
const STALL_MS = 60_000

async function relay(req: Request, res: Response, peer: RelayedPeer, path: string) {
  const headers: http2.OutgoingHttpHeaders = {
    ':method': req.method ?? 'POST',
    ':path': path,
    ':authority': String(req.headers[':authority'] ?? req.headers.host ?? 'relay'),
  }
  for (const [header, value] of Object.entries(req.headers)) {
    if (crossing(header) && value !== undefined) headers[header] = value
  }
  let upstream: http2.ClientHttp2Stream
  try {
    upstream = peer.session.request(headers)
  } catch {
    return refuse(req, res, 'unavailable', `${peer.username} is not connected to this relay`)
  }
  const cancel = () => upstream.close(http2.constants.NGHTTP2_CANCEL)
  res.once('close', cancel)
  const stall = setTimeout(() => {
    cancel()
    res.destroy()
  }, STALL_MS)
  const moved = () => stall.refresh()
  req.on('data', moved)
  upstream.on('data', moved)
  upstream.once('close', () => clearTimeout(stall))
  const answered = new Promise<http2.IncomingHttpHeaders | undefined>((resolve) => {
    upstream.once('response', resolve)
    upstream.once('close', () => resolve(undefined))
  })
  upstream.once('trailers', (trailers) => {
    if ('addTrailers' in res && req.httpVersionMajor === 2) res.addTrailers(filtered(trailers))
  })
  const sent = (peer.limiter ? pipeline(req, paced(peer.limiter), upstream) : pipeline(req, upstream)).catch(
    cancel,
  )
  const response = await answered
  if (!response) {
    await sent
    return refuse(req, res, 'unavailable', `the connection to ${peer.username} closed`)
  }
  writeHead(res, Number(response[':status'] ?? 502), filtered(response))
  try {
    await (peer.limiter ? pipeline(upstream, paced(peer.limiter), res) : pipeline(upstream, res))
  } catch {
    if (!res.writableEnded) res.destroy()
  }
  await sent
}

function filtered(headers: http2.IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const [header, value] of Object.entries(headers)) {
    if (crossing(header) && value !== undefined) out[header] = value
  }
  return out
}

/** Bytes through a peer wait for its rate cap. */
function paced(limiter: RateLimiter): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      limiter.take(chunk.length).then(
        () => done(null, chunk),
        (err: Error) => done(err),
      )
    },
  })
}
