import http from 'node:http'
import http2 from 'node:http2'
import type net from 'node:net'
import { addressKey } from '../wire/connection-slots.ts'
import type { DirectoryClient } from '../wire/directory-client.ts'
import { REGISTER_PATH, UPGRADE_PROTOCOL } from '../wire/relay-protocol.ts'
import type { WindowBudget } from './buffer-budget.ts'
import { pingUntilGone, whileOpen } from './link-liveness.ts'
import { type Registrant, RegistrationRefused } from './registration-token.ts'
import { type RelayedPeers, sessionUp } from './relayed-peers.ts'

export type LinkOptions = {
  peers: RelayedPeers
  directory: DirectoryClient
  verify: (header: string | undefined) => Promise<Registrant>
  secure: boolean
  /** How often a link is pinged; one ping left unanswered that long drops it. */
  pingMs: number
  windows: WindowBudget
  /** The connection leaves the callers' slots once it is a link (links are capped per address instead). */
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
  const address = addressKey(socket.remoteAddress ?? '')
  const registrant = await options.verify(req.headers.authorization)
  let state: { open: boolean; up?: boolean }
  try {
    state = await options.directory.sessionState(registrant.token, registrant.sessionId, 5000)
  } catch {
    throw new RegistrationRefused(503, 'the directory could not confirm the session; try again')
  }
  if (!state.open) throw new RegistrationRefused(401, 'this session was logged out; log in again')
  if (!sessionUp(state)) {
    throw new RegistrationRefused(401, 'the directory lists this peer as down; log in (and heartbeat) first')
  }
  const refusal = () => {
    const capped = peers.capped(registrant.username, address)
    if (capped) return new RegistrationRefused(503, capped)
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
  socket.setKeepAlive(true, options.pingMs)
  const window = options.windows.window
  const session = http2.connect(`${options.secure ? 'https' : 'http'}://${registrant.username}.relayed`, {
    createConnection: () => socket,
    settings: { initialWindowSize: window },
  })
  adoptLink(options, registrant, session, address, window)
}

/**
 * A link from then on: its windows follow the relay's buffer budget, it is pinged, and calls to its
 * peer go over it. Every callback on it is guarded, since a throw there would end the relay.
 */
export function adoptLink(
  options: LinkOptions,
  registrant: Registrant,
  session: http2.ClientHttp2Session,
  address: string,
  createdWith: number,
) {
  session.on('error', () => session.destroy())
  const widen = () => whileOpen(session, () => session.setLocalWindowSize(options.windows.sessionWindow))
  if (session.connecting) session.once('connect', widen)
  else widen()
  options.windows.track(session, createdWith)
  pingUntilGone(session, options.pingMs)
  options.peers.add(registrant, session, address)
}
