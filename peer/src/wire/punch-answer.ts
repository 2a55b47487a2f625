import type http2 from 'node:http2'
import type net from 'node:net'
import { dialable, dialFrom, parseEndpoint } from './hole-punch.ts'
import { PUNCH_TO_HEADER } from './relay-protocol.ts'

/** Punches a daemon dials at once: each is a few SYNs to an address its relay names. */
const MAX_PUNCHES = 8
/** Punches a daemon dials a minute, whatever its relay asks: a relay cannot make it a SYN flood. */
const PUNCHES_PER_MINUTE = 30

/**
 * The relay's punch request on this daemon's link (relay-protocol.ts): answered at once, so the relay
 * can answer the caller, then the dial from the link's own port to the caller's address. A connection
 * made is handed to `serve` as a tunnel is (TLS, RPCs only: it comes from elsewhere). Refused (and not
 * dialled): by a daemon that serves no TLS (501: a punched link is authenticated by the peer's key, or
 * not made), or with `PEERDIR_PUNCH=off` (403: it keeps its address to its relay); an address that is
 * not one on the network or not of the link's family (400); past the caps (503). The relay names the
 * address, so these bound what a relay's operator can make the daemon dial.
 */
export function punchAnswerer(options: { tls: boolean; serve: (socket: net.Socket) => void }) {
  let punching = 0
  let live = 0
  const recent: number[] = []
  const serve = (socket: net.Socket) => {
    live++
    socket.once('close', () => live--)
    options.serve(socket)
  }
  /** The answer to a punch request, and where to dial when it is 200. */
  const judge = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    if (!options.tls) return { status: 501 }
    if (process.env.PEERDIR_PUNCH === 'off') return { status: 403 }
    const link = stream.session?.socket
    const to = parseEndpoint(String(headers[PUNCH_TO_HEADER] ?? ''))
    if (!to || !link?.localPort || !dialable(to, link.remoteFamily === 'IPv6' ? 'IPv6' : 'IPv4')) {
      return { status: 400 }
    }
    const now = Date.now()
    while (recent.length > 0 && (recent[0] as number) < now - 60_000) recent.shift()
    if (punching >= MAX_PUNCHES || recent.length >= PUNCHES_PER_MINUTE) return { status: 503 }
    recent.push(now)
    return { status: 200, from: link.localPort, to }
  }
  const answer = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    const { status, from, to } = judge(stream, headers)
    stream.respond({ ':status': status }, { endStream: true })
    if (!from || !to) return
    punching++
    dialFrom(from, to)
      .then(serve, () => {}) // no link: the relay keeps carrying, the caller tries again later
      .finally(() => punching--)
  }
  /** Punched connections open now. */
  const links = () => live
  return { answer, links }
}
