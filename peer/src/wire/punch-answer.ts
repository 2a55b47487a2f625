import type http2 from 'node:http2'
import type net from 'node:net'
import { dialFrom, parseEndpoint } from './hole-punch.ts'
import { PUNCH_TO_HEADER } from './relay-protocol.ts'

/** Punches a daemon dials at once: each is a SYN to an address the relay saw, bounded like its other work. */
const MAX_PUNCHES = 8

/**
 * The relay's punch request on this daemon's link (relay-protocol.ts): answered at once, so the relay
 * can answer the caller, then the dial from the link's own port to the caller's address. A connection
 * made is handed to `serve` as a tunnel is (TLS, RPCs only: it comes from elsewhere). A daemon that
 * serves no TLS takes no punch: a punched link is authenticated by the peer's key, or not made.
 */
export function punchAnswerer(options: { tls: boolean; serve: (socket: net.Socket) => void }) {
  let punching = 0
  let live = 0
  const serve = (socket: net.Socket) => {
    live++
    socket.once('close', () => live--)
    options.serve(socket)
  }
  /** Punched connections open now. */
  const links = () => live
  const answer = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    const to = parseEndpoint(String(headers[PUNCH_TO_HEADER] ?? ''))
    const from = stream.session?.socket?.localPort
    const status = !options.tls ? 501 : !to || !from ? 400 : punching >= MAX_PUNCHES ? 503 : 200
    stream.respond({ ':status': status }, { endStream: true })
    if (status !== 200 || !to || !from) return
    punching++
    dialFrom(from, to)
      .then(serve, () => {}) // no link: the relay keeps carrying, the caller tries again later
      .finally(() => punching--)
  }
  return { answer, links }
}
