import { chmodSync, rmSync } from 'node:fs'
import http from 'node:http'
import http2 from 'node:http2'
import type net from 'node:net'
import type { ConnectRouter } from '@connectrpc/connect'
import { createContextValues, type Interceptor } from '@connectrpc/connect'
import { connectNodeAdapter } from '@connectrpc/connect-node'
import { callerAddressKey } from './auth.ts'
import { SESSION_WINDOW, STREAM_WINDOW } from './flow-windows.ts'
import { grpcWebTextAdapter } from './grpc-web-text.ts'
import {
  type ConnectionOrigin,
  type Dispatch,
  dispatchByPreface,
  type HttpServers,
  ListeningPort,
  listen,
  type TlsIdentity,
  tlsOrLocalPlain,
} from './listening-port.ts'
import { punchAnswerer } from './punch-answer.ts'
import { INNER_HEADER, PUNCH_PATH } from './relay-protocol.ts'

export type ServerOptions = {
  routes: (router: ConnectRouter) => void
  interceptors: Interceptor[]
  /**
   * Serve TLS with this certificate: RPCs only over TLS, plain HTTP only to this machine and only for
   * `plainHttp`. Absent (`--plaintext`): everything in plaintext, as on a trusted network.
   */
  tls?: TlsIdentity
  /** Takes the HTTP/2 requests it serves itself (see download-fast-path.ts); the rest go to Connect. */
  fastPath?: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => boolean
  /** Takes plain HTTP requests (either version) that are not RPCs, such as the content gateway's. */
  plainHttp?: PlainHttp
}

export type PlainHttp = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => boolean

/** An RPC server and what it holds: the port it listens on, and the links it serves on a relay's behalf. */
export type RpcServer = {
  readonly server: net.Server
  readonly port: number
  /**
   * Serves a connection this daemon opened to a relay: the relay speaks HTTP/2 to us as a client over
   * it, and each CONNECT stream it opens is a caller's tunnel, served as a connection to the daemon's
   * port (TLS inside it when the port serves TLS) but never as a loopback one: RPCs only.
   */
  serveReverse: (socket: net.Socket) => void
  /**
   * Serves a connection handed in from elsewhere as if it had reached the port (a relay's tunnel: say
   * `tunneled`, so it is never taken for this machine and never answered in plaintext when TLS is on).
   */
  accept: Dispatch
  /** Connections punched to this daemon through NAT that are open now (hole-punch.ts). */
  punchedLinks: () => number
  /** Stops listening and drops every connection, the relay's links too. */
  stop: () => Promise<void>
}

/** Listens on `port` at `host` (0: a port the kernel picks, read back from `port`) and serves RPCs there. */
export async function startRpcServer(
  options: ServerOptions & { port: number; host: string },
): Promise<RpcServer> {
  const listening = new ListeningPort()
  const server = serveRpc(listening, options)
  await listening.listen(options.port, options.host)
  return server
}

/**
 * One port, three protocols: gRPC, gRPC-web (binary and text) and Connect, over HTTP/2 and (for the latter two) HTTP/1.1.
 * The HTTP version is told by the connection's first bytes (listening-port.ts), behind TLS when given.
 */
export function serveRpc(listening: ListeningPort, options: ServerOptions): RpcServer {
  const adapterOptions = {
    routes: options.routes,
    interceptors: options.interceptors,
    // File bytes are mostly incompressible; gzip would cost a core and gain nothing.
    acceptCompression: [],
    readMaxBytes: 8 * 1024 * 1024,
    writeMaxBytes: 8 * 1024 * 1024,
    contextValues: (req: http.IncomingMessage | http2.Http2ServerRequest) =>
      createContextValues().set(callerAddressKey, req.socket?.remoteAddress ?? ''),
  }
  const connect = connectNodeAdapter(adapterOptions)
  const webText = grpcWebTextAdapter(adapterOptions)
  const { fastPath, plainHttp } = options
  // The calls a relay forwards reach RPCs only: the plain HTTP (the content gateway) answers this
  // machine, and on a relay's link every caller looks like the relay.
  const handlerFor =
    (plain: PlainHttp | undefined): typeof connect =>
    (req, res) => {
      try {
        if (req instanceof http2.Http2ServerRequest) {
          bracketIpv6Authority(req)
          if (fastPath?.(req, res as http2.Http2ServerResponse)) return
        }
        if (plain?.(req, res as http.ServerResponse)) return
        if (!webText(req, res)) connect(req, res)
      } catch {
        // Connect reads the request's URL before anything else and throws where it cannot make one
        // (a caller's `:authority` need not be a host): thrown here, it would end the daemon.
        if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' })
        res.end('bad request\n')
      }
    }
  const settings = { initialWindowSize: STREAM_WINDOW, maxConcurrentStreams: 256 }
  // Connections this daemon dialled out to a relay: the relay opens a CONNECT stream on one for each
  // caller's tunnel, outside the slots (the relay caps tunnels), and the link is never closed for
  // being quiet, since it is the only way callers reach us. A tunnel gets the port's own dispatch as a
  // tunneled connection (TLS as on the port, never taken for this machine): RPCs only.
  const inner = options.tls ? 'tls' : 'plaintext'
  const reverse = http2.createServer({ settings })
  reverse.on('session', (session: http2.ServerHttp2Session) => session.setLocalWindowSize(SESSION_WINDOW))
  // The relay's introductions: a punched connection is served as a tunnel is (TLS, RPCs only).
  const punch = punchAnswerer({
    tls: options.tls !== undefined,
    serve: (socket) => {
      socket.on('error', () => socket.destroy())
      if (slots.admit(socket)) dispatch(socket, { tunneled: true })
    },
  })
  reverse.on('stream', (stream: http2.ServerHttp2Stream, headers) => {
    stream.on('error', () => stream.destroy())
    if (headers[':method'] === 'POST' && headers[':path'] === PUNCH_PATH) {
      return void whileStreamOpen(stream, () => punch.answer(stream, headers))
    }
    if (headers[':method'] !== 'CONNECT') {
      return void whileStreamOpen(stream, () => stream.respond({ ':status': 405 }, { endStream: true }))
    }
    whileStreamOpen(stream, () => {
      stream.respond({ ':status': 200, [INNER_HEADER]: inner })
      dispatch(stream as unknown as net.Socket, { tunneled: true })
    })
  })
  const links = new Set<net.Socket>()
  const { slots } = listening
  // Bounded streams per connection (the settings) and connections per port (the slots) keep a flood
  // of callers from exhausting the daemon's memory.
  const servers = (
    handler: (req: Parameters<PlainHttp>[0], res: Parameters<PlainHttp>[1]) => void,
  ): HttpServers => {
    const counted: typeof handler = (req, res) => {
      const slot = slots.callStarted(req.socket)
      res.once('close', () => slots.callEnded(slot))
      handler(req, res)
    }
    const h2 = http2.createServer({ settings }, counted)
    h2.setTimeout(IDLE_SESSION_MS)
    h2.on('session', (session: http2.ServerHttp2Session) => {
      session.setLocalWindowSize(SESSION_WINDOW)
      // The preface alone counts as the first bytes: a session must also open a stream soon, or it is
      // only holding a slot. A caller sends its first request right behind the preface.
      const deadline = setTimeout(() => session.destroy(), FIRST_STREAM_MS)
      const clear = () => clearTimeout(deadline)
      session.once('stream', clear)
      session.once('close', clear)
    })
    return { h1: http.createServer(counted), h2 }
  }
  // The plain HTTP (the content gateway, the web app) answers this machine only; a relay's tunnel
  // reaches RPCs only, as its link does.
  const withPlain = servers(handlerFor(plainHttp))
  // A tunnel's path may keep the relayed URL's prefix (`/relayed/<name>`, as clients given that URL as
  // their base send it).
  const tunnelled = handlerFor(undefined)
  const rpcOnly = servers((req, res) => {
    if (req.url?.startsWith('/relayed/')) req.url = req.url.replace(/^\/relayed\/[^/]*/, '') || '/'
    tunnelled(req, res)
  })
  const dispatch: Dispatch = options.tls
    ? tlsOrLocalPlain({
        tls: options.tls,
        secure: withPlain,
        tunneled: rpcOnly,
        local: servers(plainOnly(plainHttp)),
      })
    : (socket, origin?: ConnectionOrigin) => plaintext(socket, origin)
  const plaintext = plaintextDispatch(withPlain, rpcOnly)
  listening.serve(dispatch)
  return {
    server: listening.server,
    get port() {
      return listening.port
    },
    accept: (socket, origin) => {
      if (slots.admit(socket)) dispatch(socket, origin)
    },
    punchedLinks: punch.links,
    serveReverse: (socket) => {
      links.add(socket)
      socket.once('close', () => links.delete(socket))
      reverse.emit('connection', socket)
    },
    stop: () => {
      for (const socket of links) socket.destroy()
      return listening.stop()
    },
  }
}

/**
 * The daemon's local control channel: Connect over HTTP/1.1 on a Unix socket, for its own CLI only. It
 * never shares the network port's connection slots, TLS or address, so a flood of peers cannot lock the
 * CLI out, and `peer status` works whatever `--host` or `--tls-cert` say.
 */
export async function listenForControl(options: {
  socketPath: string
  routes: (router: ConnectRouter) => void
  interceptors: Interceptor[]
  plainHttp?: PlainHttp
}): Promise<http.Server> {
  const connect = connectNodeAdapter({
    routes: options.routes,
    interceptors: options.interceptors,
    jsonOptions: { alwaysEmitImplicit: true },
  })
  const server = http.createServer((req, res) => {
    if (!options.plainHttp?.(req, res)) connect(req, res)
  })
  // A socket left by a daemon that was killed would make listen fail with EADDRINUSE.
  rmSync(options.socketPath, { force: true })
  await listen(server, { path: options.socketPath })
  chmodSync(options.socketPath, 0o600)
  return server
}

/**
 * Node's HTTP/2 client sends an IPv6 host without its brackets (`::1:50051`), which is no URL authority:
 * put them back, so peers that dial `http://[::1]:50051` are understood.
 */
function bracketIpv6Authority(req: http2.Http2ServerRequest) {
  const authority = req.headers[':authority']
  const bare = typeof authority === 'string' && /^([0-9a-f:.]+):(\d+)$/i.exec(authority)
  if (bare && (bare[1] ?? '').split(':').length > 2) req.headers[':authority'] = `[${bare[1]}]:${bare[2]}`
}

/**
 * Plain HTTP on a port that serves TLS (a caller on this machine): only what `plainHttp` takes (the
 * content gateway, the web app); an RPC in plaintext is told where to go instead.
 */
const plainOnly =
  (plainHttp: PlainHttp | undefined) =>
  (req: Parameters<PlainHttp>[0], res: Parameters<PlainHttp>[1]): void => {
    if (plainHttp?.(req, res)) return
    const answer = res as http.ServerResponse
    answer.writeHead(426, { 'content-type': 'text/plain' })
    answer.end('this port serves RPCs over TLS only: call https:// with the key the directory lists\n')
  }

/** Everything in plaintext (`--plaintext`): a tunneled connection still reaches RPCs only. */
function plaintextDispatch(withPlain: HttpServers, rpcOnly: HttpServers): Dispatch {
  return (socket, origin) => {
    const servers = origin?.tunneled ? rpcOnly : withPlain
    dispatchByPreface(socket, servers)
  }
}

/** An HTTP/2 session that has opened no stream this long after it began is closed (see serveRpc). */
const FIRST_STREAM_MS = 3000
/** An HTTP/2 connection with no traffic at all for this long is closed (callers reconnect as needed). */
const IDLE_SESSION_MS = 120_000

/** Runs `act` on a stream unless it is over; one closed meanwhile (the relay gave up) is destroyed. */
function whileStreamOpen(stream: http2.ServerHttp2Stream, act: () => void) {
  if (stream.closed || stream.destroyed) return
  try {
    act()
  } catch {
    stream.destroy()
  }
}
