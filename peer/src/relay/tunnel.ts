import http from 'node:http'
import http2 from 'node:http2'
import type net from 'node:net'
import { type Duplex, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { RateLimiter } from '../serve/rate-limit.ts'
import { addressKey } from '../wire/connection-slots.ts'
import { INNER_HEADER, relayedPathUsername, TUNNEL_PROTOCOL } from '../wire/relay-protocol.ts'
import type { WindowBudget } from './buffer-budget.ts'
import type { ForwardedCall } from './call-share.ts'
import type { RelayedPeer, RelayedPeers } from './relayed-peers.ts'

export type TunnelOptions = {
  peers: RelayedPeers
  maxStreamsPerPeer: number
  /** Bytes per second a tunnel must move (both ways together), over each TUNNEL_PERIOD_MS, or it is cut. */
  minCallRate: number
  windows: WindowBudget
  /** The tunnel's connection holds a call in the port's slots while it is open (so it is never evicted as idle). */
  slots: { callStarted: (socket: net.Socket) => unknown; callEnded: (slot: never) => void }
  /** Bytes carried both ways through every tunnel, for the relay's /metrics. */
  carried: { bytes: number }
}

/**
 * The period over which a tunnel must move its minimum: one that moves less (a caller reading a byte
 * now and then, a peer that stopped sending, a connection left open between calls) only holds one of
 * the peer's tunnels, and is cut.
 */
export const TUNNEL_PERIOD_MS = 20_000

/** How long the peer has to answer a tunnel's CONNECT. */
const ANSWER_MS = 10_000

class Refused extends Error {
  readonly status: number
  constructor(status: number, message: string) {
    super(message)
    this.status = status
  }
}

/**
 * A caller's tunnel request (an HTTP/1.1 upgrade on `/relayed/<username>`, see relay-protocol.ts):
 * answered with `101` and from then on carried as an opaque byte stream to the peer, as a CONNECT
 * stream on its link; or refused with one line saying why. Never throws.
 */
export function acceptTunnel(
  options: TunnelOptions,
  req: http.IncomingMessage,
  socket: Duplex,
  head: Buffer,
) {
  const name = relayedPathUsername((req.url ?? '').split('?')[0] ?? '')
  const asked =
    name && req.method === 'GET' && req.headers.upgrade === TUNNEL_PROTOCOL
      ? tunnel(options, name, socket as net.Socket, head, 'upgrade')
      : Promise.reject(
          new Refused(400, `ask for a tunnel with GET /relayed/<username> and Upgrade: ${TUNNEL_PROTOCOL}`),
        )
  asked.catch((err: unknown) => {
    const refused = err instanceof Refused ? err : new Refused(500, 'the tunnel failed')
    if (socket.destroyed || !socket.writable) return void socket.destroy()
    socket.end(
      `HTTP/1.1 ${refused.status} ${http.STATUS_CODES[refused.status]}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${refused.message}\n`,
    )
  })
}

/**
 * A caller's TLS connection whose ClientHello names a tunnel (tls-server-name.ts): carried to the peer
 * from its first byte, the ClientHello included, with no answer of the relay's own in between. A
 * refusal can only be a TLS alert: "unrecognized name" when the peer is not here, "internal error"
 * otherwise. Never throws.
 */
export function acceptTlsTunnel(options: TunnelOptions, username: string, socket: net.Socket, hello: Buffer) {
  tunnel(options, username, socket, hello, 'tls').catch((err: unknown) => {
    if (socket.destroyed || !socket.writable) return void socket.destroy()
    const alert = err instanceof Refused && err.status === 404 ? UNRECOGNIZED_NAME : INTERNAL_ERROR
    socket.end(Buffer.from([ALERT_RECORD, 0x03, 0x03, 0x00, 0x02, FATAL, alert]))
  })
}

const ALERT_RECORD = 0x15
const FATAL = 2
const UNRECOGNIZED_NAME = 112
const INTERNAL_ERROR = 80

/** How the caller asked: an HTTP/1.1 upgrade (answered 101) or a TLS ClientHello (answered by the peer). */
type Asked = 'upgrade' | 'tls'

async function tunnel(options: TunnelOptions, name: string, socket: net.Socket, head: Buffer, asked: Asked) {
  const { windows } = options
  if (windows.calls >= windows.maxCalls) {
    throw new Refused(503, `this relay carries its most tunnels (${windows.maxCalls}); try again shortly`)
  }
  const peer = options.peers.get(name)
  if (!peer || peer.session.closed || peer.session.destroyed) {
    throw new Refused(404, `${name} is not connected to this relay`)
  }
  // One caller (an address: the relay reads no token) gets a share of a peer's tunnels, not all of them.
  const call: ForwardedCall = {
    caller: `address:${addressKey(socket.remoteAddress ?? '')}`,
    startedAt: Date.now(),
    moved: 0,
    lastMovedAt: Date.now(),
    cut: () => socket.destroy(),
  }
  const refusal = peer.load.admit(call, options.maxStreamsPerPeer, peer.username)
  if (refusal) throw new Refused(429, refusal)
  const slot = options.slots.callStarted(socket)
  windows.callStarted()
  options.windows.linkCalls(peer.session, peer.load.streams)
  try {
    await carry(peer, socket, head, call, options, asked)
  } finally {
    peer.load.end(call)
    windows.callEnded()
    windows.linkCalls(peer.session, peer.load.streams)
    options.slots.callEnded(slot as never)
  }
}

/** Opens the peer's end of the tunnel, answers the caller, and carries the bytes until either end closes. */
async function carry(
  peer: RelayedPeer,
  socket: net.Socket,
  head: Buffer,
  call: ForwardedCall,
  options: TunnelOptions,
  asked: Asked,
) {
  const { minCallRate: minRate, carried } = options
  let upstream: http2.ClientHttp2Stream
  try {
    upstream = peer.session.request({ ':method': 'CONNECT', ':authority': `${peer.username}.relayed:443` })
  } catch {
    throw new Refused(502, `the link to ${peer.username} is closing; try again`)
  }
  upstream.on('error', () => {}) // seen as its close
  const cancel = () => {
    if (!upstream.closed) upstream.close(http2.constants.NGHTTP2_CANCEL)
  }
  socket.once('close', cancel)
  const answer = await new Promise<http2.IncomingHttpHeaders | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ANSWER_MS)
    upstream.once('response', (headers) => {
      clearTimeout(timer)
      resolve(headers)
    })
    upstream.once('close', () => {
      clearTimeout(timer)
      resolve(undefined)
    })
  })
  const inner = answer?.[INNER_HEADER]
  if (Number(answer?.[':status']) !== 200 || (inner !== 'tls' && inner !== 'plaintext')) {
    cancel()
    throw new Refused(502, `${peer.username} did not take the tunnel`)
  }
  // A caller that opened with TLS gets the peer's TLS or nothing.
  if (asked === 'tls' && inner !== 'tls') {
    cancel()
    throw new Refused(502, `${peer.username} serves no TLS`)
  }
  if (socket.destroyed) return cancel()
  if (asked === 'upgrade') {
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${TUNNEL_PROTOCOL}\r\n${INNER_HEADER}: ${inner}\r\n\r\n`,
    )
  }
  call.cut = () => {
    cancel()
    socket.destroy()
  }
  const moved = (chunk: Buffer) => {
    call.moved += chunk.length
    carried.bytes += chunk.length
    call.lastMovedAt = Date.now()
  }
  socket.on('data', moved)
  upstream.on('data', moved)
  // At least one byte a period even with no minimum: a tunnel in which nothing moves only holds a slot.
  const least = Math.max(1, (minRate * TUNNEL_PERIOD_MS) / 1000)
  let movedBefore = 0
  const check = setInterval(() => {
    if (call.moved - movedBefore < least) {
      clearInterval(check)
      call.cut()
    }
    movedBefore = call.moved
  }, TUNNEL_PERIOD_MS)
  if (head.length > 0) {
    moved(head)
    upstream.write(head)
  }
  const { limiter } = peer
  // Each way paced by the peer's cap; what the relay holds is bounded by the link stream's window (the
  // buffer budget's) and the streams' own high-water marks, as each side's backpressure pauses the other.
  const up = (limiter ? pipeline(socket, paced(limiter), upstream) : pipeline(socket, upstream)).catch(cancel)
  const down = (limiter ? pipeline(upstream, paced(limiter), socket) : pipeline(upstream, socket)).catch(() =>
    socket.destroy(),
  )
  await Promise.all([up, down])
  clearInterval(check)
  cancel()
  socket.destroySoon()
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
