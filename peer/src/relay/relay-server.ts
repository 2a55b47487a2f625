import { readFileSync } from 'node:fs'
import http from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'
import type { Duplex } from 'node:stream'
import tls from 'node:tls'
import { ConnectionSlots } from '../wire/connection-slots.ts'
import { DirectoryClient } from '../wire/directory-client.ts'
import { directoryKeys } from '../wire/directory-tokens.ts'
import { dispatchByPreface } from '../wire/transport.ts'
import { callerVerifier } from './caller-tokens.ts'
import { type ForwardOptions, forward } from './forward.ts'
import { acceptLink, type LinkOptions, RELAY_SESSION_WINDOW, RELAY_STREAM_WINDOW } from './links.ts'
import { refuse, writeHead } from './refusals.ts'
import { registrationVerifier } from './registration-token.ts'
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

/** Calls the relay carries at once, to all its peers together: each may buffer a window each way. */
const MAX_CALLS = 4096
/** A caller's call streams per connection, as on a peer's own port. */
const STREAMS_PER_CONNECTION = 256

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
  const keys = directoryKeys(options.directoryUrl)
  const slots = new ConnectionSlots()

  const forwarding: ForwardOptions = {
    peers,
    verifyCaller: callerVerifier(keys),
    maxStreamsPerPeer: options.maxStreamsPerPeer,
  }
  let calls = 0
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
    if (calls >= MAX_CALLS) {
      return refuse(
        req,
        res,
        'resource_exhausted',
        `this relay carries its most calls (${MAX_CALLS}); try again shortly`,
      )
    }
    calls++
    forward(req, res, forwarding)
      .catch(() => res.destroy())
      .finally(() => calls--)
  }
  const h2 = http2.createServer(
    { settings: { initialWindowSize: RELAY_STREAM_WINDOW, maxConcurrentStreams: STREAMS_PER_CONNECTION } },
    onCall,
  )
  h2.setTimeout(120_000)
  h2.on('session', (session) => session.setLocalWindowSize(RELAY_SESSION_WINDOW))
  const h1 = http.createServer(onCall)
  const links: LinkOptions = {
    peers,
    directory,
    verify: registrationVerifier(keys),
    secure: options.tls !== undefined,
    maxPeers: options.maxPeers,
    leaveCallerSlots: (socket) => slots.forget(socket),
  }
  h1.on('upgrade', (req: http.IncomingMessage, socket: Duplex) =>
    acceptLink(links, req, socket as net.Socket),
  )

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
