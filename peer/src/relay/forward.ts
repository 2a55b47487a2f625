import http2 from 'node:http2'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { RateLimiter } from '../serve/rate-limit.ts'
import { addressKey } from '../wire/connection-slots.ts'
import type { WindowBudget } from './buffer-budget.ts'
import type { ForwardedCall } from './call-share.ts'
import type { Caller } from './caller-tokens.ts'
import { answerAndEnd, type Request, type Response, refuse, writeHead } from './refusals.ts'
import type { RelayedPeer, RelayedPeers } from './relayed-peers.ts'

export type ForwardOptions = {
  peers: RelayedPeers
  verifyCaller: (token: string) => Promise<Caller>
  maxStreamsPerPeer: number
  /** Bytes per second a call must move (both ways together), over each CALL_PERIOD_MS, or it is cut. */
  minCallRate: number
  windows: WindowBudget
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
  'te',
])

/** The headers that cross: end to end ones only (and `te: trailers`, which gRPC needs and HTTP/2 allows). */
function crossing(headers: http2.IncomingHttpHeaders): Record<string, string | string[]> {
  const named = String(headers.connection ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
  const out: Record<string, string | string[]> = {}
  for (const [header, value] of Object.entries(headers)) {
    if (value === undefined || header.startsWith(':') || HOP_BY_HOP.has(header) || named.includes(header))
      continue
    out[header] = value
  }
  if (headers.te === 'trailers') out.te = 'trailers'
  return out
}

/**
 * The period over which a forwarded call must move its minimum: one that moves less (a caller reading a
 * byte now and then, a peer that stopped sending) only holds one of the peer's calls, and is cut.
 */
export const CALL_PERIOD_MS = 20_000

/**
 * Forwards one call to the relayed peer it names, over that peer's registered connection: headers and
 * body as they come, the answer and its trailers as they come back, each side's flow control pacing the
 * other (and the peer's rate cap pacing both). The relay reads no message and stores nothing.
 */
export async function forward(req: Request, res: Response, options: ForwardOptions) {
  const path = CALL_PATH.exec((req.url ?? '').split('?')[0] ?? '')
  if (!path) {
    return refuse(req, res, 'unimplemented', 'this relay forwards only peerdir.v1.PeerService calls')
  }
  const named = path[1]
  const token = /^Bearer\s+([\w.-]{1,8192})$/i.exec(String(req.headers.authorization ?? ''))?.[1]
  let caller: Caller | undefined
  if (token) {
    try {
      caller = await options.verifyCaller(token)
    } catch (err) {
      return refuse(req, res, 'unauthenticated', (err as Error).message)
    }
    if (named && named.toLowerCase() !== caller.audience.toLowerCase()) {
      const conflict = `this call token is for ${caller.audience}, but the call is addressed to ${named}`
      return refuse(req, res, 'invalid_argument', conflict)
    }
  }
  const name = named ?? caller?.audience
  if (!name) {
    const how = 'name the peer: call <relay>/relayed/<username>/… or present a call token for it'
    return refuse(req, res, 'invalid_argument', how)
  }
  const peer = options.peers.get(name)
  if (!peer || peer.session.closed || peer.session.destroyed) {
    return refuse(req, res, 'unavailable', `${name} is not connected to this relay`)
  }
  // One caller (an account, or an address without one) gets a share of a peer's calls, not all of them.
  const call: ForwardedCall = {
    caller: caller
      ? `user:${caller.subject.toLowerCase()}`
      : `address:${addressKey(req.socket.remoteAddress ?? '')}`,
    startedAt: Date.now(),
    moved: 0,
    lastMovedAt: Date.now(),
    cut: () => cutOff(res),
  }
  const refusal = peer.load.admit(call, options.maxStreamsPerPeer, peer.username)
  if (refusal) return refuse(req, res, 'resource_exhausted', refusal)
  options.windows.linkCalls(peer.session, peer.load.streams)
  try {
    await relay(req, res, peer, path[2] as string, call, options.minCallRate)
  } finally {
    peer.load.end(call)
    options.windows.linkCalls(peer.session, peer.load.streams)
  }
}

async function relay(
  req: Request,
  res: Response,
  peer: RelayedPeer,
  path: string,
  call: ForwardedCall,
  minCallRate: number,
) {
  const headers: http2.OutgoingHttpHeaders = {
    ...crossing(req.headers),
    ':method': req.method ?? 'POST',
    ':path': path,
    ':authority': String(req.headers[':authority'] ?? req.headers.host ?? 'relay'),
  }
  let upstream: http2.ClientHttp2Stream
  try {
    upstream = peer.session.request(headers)
  } catch {
    return refuse(req, res, 'invalid_argument', 'the call’s headers cannot be forwarded over HTTP/2')
  }
  // Failures show as the stream's close (answered below); an error must never go unhandled.
  upstream.on('error', () => {})
  const cancel = () => {
    if (!upstream.closed) upstream.close(http2.constants.NGHTTP2_CANCEL)
  }
  res.once('close', cancel)
  call.cut = () => {
    cancel()
    cutOff(res)
  }
  const moved = (chunk: Buffer) => {
    call.moved += chunk.length
    call.lastMovedAt = Date.now()
  }
  req.on('data', moved)
  upstream.on('data', moved)
  // At least one byte a period even with no minimum: a call in which nothing moves only holds a slot.
  const least = Math.max(1, (minCallRate * CALL_PERIOD_MS) / 1000)
  let movedBefore = 0
  const check = setInterval(() => {
    if (call.moved - movedBefore < least) {
      clearInterval(check)
      call.cut()
    }
    movedBefore = call.moved
  }, CALL_PERIOD_MS)
  const stopChecking = () => clearInterval(check)
  upstream.once('close', stopChecking)
  res.once('close', stopChecking)
  const answered = new Promise<http2.IncomingHttpHeaders | undefined>((resolve) => {
    upstream.once('response', resolve)
    upstream.once('close', () => resolve(undefined))
  })
  upstream.once('trailers', (trailers) => {
    if (res instanceof http2.Http2ServerResponse) res.addTrailers(crossing(trailers))
  })
  const limiter = peer.limiter
  const sent = (limiter ? pipeline(req, paced(limiter), upstream) : pipeline(req, upstream)).catch(cancel)
  const response = await answered
  if (!response) {
    await sent
    return refuse(req, res, 'unavailable', `the connection to ${peer.username} closed`)
  }
  const status = Number(response[':status'] ?? 502)
  if (response['grpc-status'] !== undefined) {
    // A trailers-only answer (a gRPC failure; its status is in the headers): passed on as one, or
    // gRPC clients lose its status.
    answerAndEnd(res, status, crossing(response))
  } else {
    writeHead(res, status, crossing(response))
    try {
      await (limiter ? pipeline(upstream, paced(limiter), res) : pipeline(upstream, res))
    } catch {
      if (!res.writableEnded) res.destroy()
    }
  }
  await sent
}

/** Ends a call the relay gives up on: an HTTP/2 caller sees it cancelled, an HTTP/1.1 one its connection end. */
function cutOff(res: Response) {
  if (res instanceof http2.Http2ServerResponse) {
    if (!res.stream.closed) res.stream.close(http2.constants.NGHTTP2_CANCEL)
  } else res.destroy()
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
