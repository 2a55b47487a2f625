import { readFileSync } from 'node:fs'
import net from 'node:net'
import tls from 'node:tls'
import { ConnectionSlots } from './connection-slots.ts'

export type TlsFiles = { certPath: string; keyPath: string }

/** A connection that has said nothing (or not finished its TLS handshake) this long is closed. */
export const FIRST_BYTES_MS = 5000
/** Stopping waits this long at most for the server to close (peers' sessions are destroyed at once). */
const STOP_MS = 2000

/** Listens on a TCP port or a Unix socket; rejects with the reason it cannot (EADDRINUSE, EACCES). */
export function listen(server: net.Server, where: { port: number; host: string } | { path: string }) {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    const listening = () => {
      server.off('error', reject)
      resolve()
    }
    if ('path' in where) server.listen(where.path, listening)
    else server.listen(where.port, where.host, listening)
  })
}

/**
 * A TCP port that admits every connection through its slots (connection-slots.ts) before TLS or HTTP
 * see it: bounded connections keep a flood of callers from exhausting memory or locking others out.
 * Connections that arrive before `serve` names what handles them wait (each in its slot) until it does:
 * a daemon asked for any port (0) listens before it can serve, to learn which port it got.
 */
export class ListeningPort {
  readonly server = net.createServer({ noDelay: true }, (socket) => this.#admit(socket))
  readonly slots = new ConnectionSlots()
  #dispatch: Dispatch | undefined
  readonly #waiting = new Set<net.Socket>()

  /** Listens on `port` at `host`; 0 takes a port the kernel picks, read back from `port`. */
  listen(port: number, host: string): Promise<void> {
    return listen(this.server, { port, host })
  }

  /** The port it listens on (0 before it does). */
  get port(): number {
    const address = this.server.address()
    return typeof address === 'object' && address ? address.port : 0
  }

  /** From now on, hands each admitted connection (and those that waited) to `dispatch`. */
  serve(dispatch: Dispatch) {
    this.#dispatch = dispatch
    for (const socket of this.#waiting) if (!socket.destroyed) dispatch(socket)
    this.#waiting.clear()
  }

  /** Stops listening and drops every connection (peers' HTTP/2 sessions would otherwise linger). */
  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve())
      this.slots.destroyAll()
      setTimeout(resolve, STOP_MS).unref()
    })
  }

  #admit(socket: net.Socket) {
    socket.on('error', () => socket.destroy())
    if (!this.slots.admit(socket)) return
    if (this.#dispatch) return this.#dispatch(socket)
    this.#waiting.add(socket)
    socket.once('close', () => this.#waiting.delete(socket))
  }
}

/** The servers of each HTTP version a connection is handed to once its version is told. */
export type HttpServers = { h1: net.Server; h2: net.Server }

/** A certificate and its private key (PEM), as TLS serves them. */
export type TlsIdentity = { cert: string | Buffer; key: string | Buffer }

/** Where a connection came from: a relay's tunnel is never "this machine", whatever its socket says. */
export type ConnectionOrigin = { tunneled?: boolean }

export type Dispatch = (socket: net.Socket, origin?: ConnectionOrigin) => void

export const readTlsFiles = (files: TlsFiles): TlsIdentity => ({
  cert: readFileSync(files.certPath),
  key: readFileSync(files.keyPath),
})

/**
 * Hands each connection to the server of its HTTP version, behind TLS when `tls` names a certificate.
 * The version is told by the first bytes, also inside TLS (where ALPN offers both): an HTTP/2 connection
 * opens with its fixed preface, anything else is HTTP/1.1 (a relay's registering peer negotiates h2 but
 * speaks its registration in HTTP/1.1 before the link turns to HTTP/2).
 */
export function byHttpVersion(options: { tls?: TlsFiles } & HttpServers): Dispatch {
  if (!options.tls) return (socket) => dispatchByPreface(socket, options)
  return behindTls(readTlsFiles(options.tls), options)
}

/**
 * TLS (HTTP/2 or HTTP/1.1 by ALPN) in front of `servers`: each connection handed in is handshaken first,
 * then told by its first bytes, or by the protocol ALPN agreed when `byAlpn` (no bytes read before the
 * server reads them: a tunnel's TLS runs over a JS stream, where bytes read and put back were seen to
 * reach HTTP/2 out of order, "bad client magic").
 */
export function behindTls(identity: TlsIdentity, servers: HttpServers, byAlpn = false): Dispatch {
  const secure = tls.createServer(
    { ...identity, ALPNProtocols: ['h2', 'http/1.1'], handshakeTimeout: FIRST_BYTES_MS },
    (socket) => {
      socket.on('error', () => socket.destroy())
      if (!byAlpn) return dispatchByPreface(socket, servers)
      ;(socket.alpnProtocol === 'h2' ? servers.h2 : servers.h1).emit('connection', socket)
    },
  )
  secure.on('tlsClientError', (_err, socket) => socket.destroy())
  return (socket) => secure.emit('connection', socket)
}

/** The first byte of every TLS connection: a handshake record. Plain HTTP starts with a letter. */
const TLS_HANDSHAKE = 0x16

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/

/** A connection from this machine, straight to the port (not through a relay's tunnel). */
export const fromThisMachine = (socket: net.Socket, origin?: ConnectionOrigin) =>
  !origin?.tunneled && LOOPBACK.test(socket.remoteAddress ?? '')

/**
 * A port that speaks TLS and, to this machine only, plain HTTP: a connection is told by its first byte
 * (a TLS handshake record is 0x16). TLS goes to `secure` (a tunneled one to `tunneled`, which serves no
 * local-only pages); plain HTTP from this machine goes to `local`, and from anywhere else (a tunnel
 * included) is closed: RPCs, tokens and file bytes never cross the network in clear.
 */
export function tlsOrLocalPlain(options: {
  tls: TlsIdentity
  secure: HttpServers
  tunneled: HttpServers
  local: HttpServers
}): Dispatch {
  const secure = behindTls(options.tls, options.secure)
  const tunneled = behindTls(options.tls, options.tunneled, true)
  return (socket, origin) => {
    // A tunnel is TLS or nothing: handed on unread (a handshake that is not one fails there).
    if (origin?.tunneled) return tunneled(socket)
    onFirstBytes(socket, (head) => {
      if (head[0] === TLS_HANDSHAKE) return secure(socket)
      if (!fromThisMachine(socket, origin)) return socket.destroy()
      dispatchByPreface(socket, options.local)
    })
  }
}

/** Waits for a connection's first bytes (at most FIRST_BYTES_MS), puts them back and hands it on. */
function onFirstBytes(socket: net.Socket, then: (head: Buffer) => void) {
  socket.setTimeout(FIRST_BYTES_MS, () => socket.destroy())
  socket.once('data', (head) => {
    socket.setTimeout(0)
    socket.pause()
    socket.unshift(head)
    then(head)
    process.nextTick(() => socket.resume())
  })
}

/**
 * Hands a connection to the server of its HTTP version, told by its first bytes: an HTTP/2 connection
 * opens with its fixed preface ("PRI * HTTP/2.0"), anything else is HTTP/1.1. A connection that says
 * nothing holds a slot: callers speak at once, so silence means it is not one.
 */
export function dispatchByPreface(socket: net.Socket, servers: HttpServers) {
  onFirstBytes(socket, (head) =>
    (head.toString('latin1', 0, 3) === 'PRI' ? servers.h2 : servers.h1).emit('connection', socket),
  )
}
