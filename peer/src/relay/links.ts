import http from 'node:http'
import http2 from 'node:http2'
import type net from 'node:net'
import type { DirectoryClient } from '../wire/directory-client.ts'
import { REGISTER_PATH, UPGRADE_PROTOCOL } from '../wire/relay-protocol.ts'
import { SESSION_WINDOW } from '../wire/transport.ts'
import { type Registrant, RegistrationRefused } from './registration-token.ts'
import type { RelayedPeers } from './relayed-peers.ts'

/** How often a link is pinged; one ping left unanswered that long drops it. */
const PING_MS = 15_000
/**
 * The relay's HTTP/2 windows, toward callers and toward linked peers: every forwarded call may buffer
 * up to a window on each side, so they are kept to what a fast transfer needs through one hop.
 */
export const RELAY_STREAM_WINDOW = 1024 * 1024
export const RELAY_SESSION_WINDOW = SESSION_WINDOW / 2

export type LinkOptions = {
  peers: RelayedPeers
  directory: DirectoryClient
  verify: (header: string | undefined, origin: string) => Promise<Registrant>
  secure: boolean
  maxPeers: number
  /** The connection leaves the callers' slots once it is a link. */
  leaveCallerSlots: (socket: net.Socket) => void
}

/**
 * A registration (an HTTP/1.1 upgrade, see relay-protocol.ts): the token checked, the session confirmed
 * with the directory, then `101` and the relay's HTTP/2 client on the connection; or one line saying why not.
 */
export function acceptLink(options: LinkOptions, req: http.IncomingMessage, socket: net.Socket) {
  register(options, req, socket).catch((err: unknown) => {
    const refused =
      err instanceof RegistrationRefused ? err : new RegistrationRefused(500, 'registration failed')
    socket.end(
      `HTTP/1.1 ${refused.status} ${http.STATUS_CODES[refused.status]}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${refused.message}\n`,
    )
  })
}

async function register(options: LinkOptions, req: http.IncomingMessage, socket: net.Socket) {
  const { peers } = options
  if (req.url !== REGISTER_PATH || req.method !== 'POST' || req.headers.upgrade !== UPGRADE_PROTOCOL) {
    throw new RegistrationRefused(400, `register with POST ${REGISTER_PATH} and Upgrade: ${UPGRADE_PROTOCOL}`)
  }
  const origin = originOf(options.secure, req.headers.host)
  const registrant = await options.verify(req.headers.authorization, origin)
  let open = false
  try {
    open = (await options.directory.sessionState(registrant.token, registrant.sessionId, 5000)).open
  } catch {
    throw new RegistrationRefused(503, 'the directory could not confirm the session; try again')
  }
  if (!open) throw new RegistrationRefused(401, 'this session was logged out; log in again')
  const refusal = () => {
    if (peers.full(registrant.username)) {
      return new RegistrationRefused(
        503,
        `this relay carries its most peers (${options.maxPeers}); try another`,
      )
    }
    if (!peers.newer(registrant)) {
      return new RegistrationRefused(409, `${registrant.username} is registered here with a newer token`)
    }
    return undefined
  }
  const before = refusal()
  if (before) throw before
  if (socket.destroyed) return
  // HTTP/2 takes the connection over only once the answer is written out: Node's HTTP/2 must not
  // start on a socket (TLS above all) with a write still in progress.
  await new Promise<void>((resolve, reject) =>
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${UPGRADE_PROTOCOL}\r\n\r\n`,
      (err) => (err ? reject(err) : resolve()),
    ),
  )
  // Another registration may have won the race while the answer was written.
  if (refusal()) return void socket.destroy()
  options.leaveCallerSlots(socket)
  socket.setKeepAlive(true, PING_MS)
  const session = http2.connect(`${options.secure ? 'https' : 'http'}://${registrant.username}.relayed`, {
    createConnection: () => socket,
    settings: { initialWindowSize: RELAY_STREAM_WINDOW },
  })
  session.on('error', () => session.destroy())
  session.once('connect', () => session.setLocalWindowSize(RELAY_SESSION_WINDOW))
  // A link whose other end vanished without a word (a machine off, a NAT that forgot it) is found
  // by a ping left unanswered for a whole period.
  let awaitingPong = false
  const ping = setInterval(() => {
    if (awaitingPong) return session.destroy()
    awaitingPong = session.ping((err) => {
      awaitingPong = false
      if (err) session.destroy()
    })
  }, PING_MS)
  session.once('close', () => clearInterval(ping))
  peers.add(registrant, session)
}

/** The origin the registering peer dialled, which its token must name. */
function originOf(secure: boolean, host: string | undefined): string {
  try {
    return new URL(`${secure ? 'https' : 'http'}://${host ?? ''}`).origin
  } catch {
    throw new RegistrationRefused(400, 'the registration names no valid Host')
  }
}
