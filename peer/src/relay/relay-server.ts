import { readFileSync } from 'node:fs'
import http from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'
import type { Duplex } from 'node:stream'
import tls from 'node:tls'
import { ConnectionSlots } from '../wire/connection-slots.ts'
import { DirectoryClient } from '../wire/directory-client.ts'
import { REGISTER_PATH, UPGRADE_PROTOCOL } from '../wire/relay-protocol.ts'
import { dispatchByPreface, SESSION_WINDOW, STREAM_WINDOW } from '../wire/transport.ts'
import { forward, writeHead } from './forward.ts'
import { RegistrationRefused, registrationVerifier } from './registration-token.ts'
import { type Caps, RelayedPeers } from './relayed-peers.ts'

export type RelayOptions = Caps & {
  port: number
  host: string
  directoryUrl: string
  /** Serve TLS: callers and registering peers alike then dial https://. */
  tls?: { certPath: string; keyPath: string }
  log: (line: string) => void
}

export type Relay = { port: number; peers: RelayedPeers; stop: () => Promise<void> }

/** A caller's call streams per connection, as on a peer's own port. */
const STREAMS_PER_CONNECTION = 256
/** How long a relayed peer's link may go without answering a ping before it is dropped. */
const PING_MS = 15_000

/**
 * `peer relay`: one port where daemons that nobody can dial register (an HTTP/1.1 upgrade, then the
 * relay speaks HTTP/2 to them over the connection they opened) and where callers reach them, over
 * HTTP/2 (gRPC, gRPC-web, Connect) or HTTP/1.1 (gRPC-web, Connect). Every connection takes a slot as on
 * a peer's port (caps per address, silent ones closed), so a flood cannot starve the peers it carries.
 */
export async function startRelay(options: RelayOptions): Promise<Relay> {
  const { log } = options
  const directory = new DirectoryClient(options.directoryUrl)
  const peers = new RelayedPeers(options, directory, log)
  const verify = registrationVerifier(options.directoryUrl)
  const slots = new ConnectionSlots()

  const onCall = (
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse,
  ) => {
    const slot = slots.callStarted(req.socket)
    res.once('close', () => slots.callEnded(slot))
    if (req.url === '/healthz' && req.method === 'GET') {
      writeHead(res, 200, { 'content-type': 'application/json' })
      return void res.end(JSON.stringify({ ok: true, peers: peers.size }))
    }
    void forward(req, res, peers, options.maxStreamsPerPeer).catch(() => res.destroy())
  }
  const h2 = http2.createServer(
    { settings: { initialWindowSize: STREAM_WINDOW, maxConcurrentStreams: STREAMS_PER_CONNECTION } },
    onCall,
  )
  h2.setTimeout(120_000)
  h2.on('session', (session) => session.setLocalWindowSize(SESSION_WINDOW))
  const h1 = http.createServer(onCall)
  h1.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
    register(req, socket as net.Socket).catch((err: unknown) => {
      const refused =
        err instanceof RegistrationRefused ? err : new RegistrationRefused(500, 'registration failed')
      socket.end(
        `HTTP/1.1 ${refused.status} ${http.STATUS_CODES[refused.status]}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${refused.message}\n`,
      )
    })
  })

  async function register(req: http.IncomingMessage, socket: net.Socket) {
    if (req.url !== REGISTER_PATH || req.method !== 'POST' || req.headers.upgrade !== UPGRADE_PROTOCOL) {
      throw new RegistrationRefused(
        400,
        `register with POST ${REGISTER_PATH} and Upgrade: ${UPGRADE_PROTOCOL}`,
      )
    }
    const registrant = await verify(req.headers.authorization)
    let open = false
    try {
      open = (await directory.sessionState(registrant.token, registrant.sessionId, 5000)).open
    } catch {
      throw new RegistrationRefused(503, 'the directory could not confirm the session; try again')
    }
    if (!open) throw new RegistrationRefused(401, 'this session was logged out; log in again')
    if (peers.full(registrant.username)) {
      throw new RegistrationRefused(
        503,
        `this relay carries its most peers (${options.maxPeers}); try another`,
      )
    }
    if (socket.destroyed) return
    // HTTP/2 takes the connection over only once the answer is written out: Node's HTTP/2 must not
    // start on a socket (TLS above all) with a write still in progress.
    await new Promise<void>((resolve, reject) =>
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${UPGRADE_PROTOCOL}\r\n\r\n`,
        (err) => (err ? reject(err) : resolve()),
      ),
    )
    // The link carries calls for as long as it lives: never idle in the slots' eyes, never evicted.
    slots.callStarted(socket)
    socket.setKeepAlive(true, PING_MS)
    const session = http2.connect(`${options.tls ? 'https' : 'http'}://${registrant.username}.relayed`, {
      createConnection: () => socket,
      settings: { initialWindowSize: STREAM_WINDOW },
    })
    session.on('error', () => session.destroy())
    session.once('connect', () => session.setLocalWindowSize(SESSION_WINDOW))
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

  // The HTTP version is told by the first bytes, also inside TLS: a registering peer negotiates h2 (so
  // both ends of its link agree on the protocol that follows) but speaks its registration in HTTP/1.1.
  let dispatch = (socket: net.Socket) => dispatchByPreface(socket, h1, h2)
  if (options.tls) {
    const secure = tls.createServer(
      {
        cert: readFileSync(options.tls.certPath),
        key: readFileSync(options.tls.keyPath),
        ALPNProtocols: ['h2', 'http/1.1'],
        handshakeTimeout: 5000,
      },
      (socket) => {
        socket.on('error', () => socket.destroy())
        dispatchByPreface(socket, h1, h2)
      },
    )
    secure.on('tlsClientError', (_err, socket) => socket.destroy())
    dispatch = (socket) => secure.emit('connection', socket)
  }
  const server = net.createServer({ noDelay: true }, (socket) => {
    socket.on('error', () => socket.destroy())
    if (slots.admit(socket)) dispatch(socket)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as net.AddressInfo).port
  log(`relay listening on ${options.host}:${port}, directory ${options.directoryUrl}`)
  return {
    port,
    peers,
    stop: async () => {
      peers.stop()
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        slots.destroyAll()
        setTimeout(resolve, 2000).unref()
      })
    },
  }
}
