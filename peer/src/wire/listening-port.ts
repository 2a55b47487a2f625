import { readFileSync } from 'node:fs'
import type http from 'node:http'
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
  #dispatch: ((socket: net.Socket) => void) | undefined
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
  serve(dispatch: (socket: net.Socket) => void) {
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

/**
 * Hands each connection to the server of its HTTP version, behind TLS when `tls` names a certificate.
 * The version is told by the first bytes, also inside TLS (where ALPN offers both): an HTTP/2 connection
 * opens with its fixed preface, anything else is HTTP/1.1 (a relay's registering peer negotiates h2 but
 * speaks its registration in HTTP/1.1 before the link turns to HTTP/2).
 */
export function byHttpVersion(options: {
  tls?: TlsFiles
  h1: http.Server
  h2: net.Server
}): (socket: net.Socket) => void {
  const { h1, h2 } = options
  if (!options.tls) return (socket) => dispatchByPreface(socket, h1, h2)
  const secure = tls.createServer(
    {
      cert: readFileSync(options.tls.certPath),
      key: readFileSync(options.tls.keyPath),
      ALPNProtocols: ['h2', 'http/1.1'],
      handshakeTimeout: FIRST_BYTES_MS,
    },
    (socket) => {
      socket.on('error', () => socket.destroy())
      dispatchByPreface(socket, h1, h2)
    },
  )
  secure.on('tlsClientError', (_err, socket) => socket.destroy())
  return (socket) => secure.emit('connection', socket)
}

/**
 * Hands a connection to the server of its HTTP version, told by its first bytes: an HTTP/2 connection
 * opens with its fixed preface ("PRI * HTTP/2.0"), anything else is HTTP/1.1. A connection that says
 * nothing holds a slot: callers speak at once, so silence means it is not one.
 */
function dispatchByPreface(socket: net.Socket, h1: net.Server, h2: net.Server) {
  socket.setTimeout(FIRST_BYTES_MS, () => socket.destroy())
  socket.once('data', (head) => {
    socket.setTimeout(0)
    socket.pause()
    socket.unshift(head)
    const target = head.toString('latin1', 0, 3) === 'PRI' ? h2 : h1
    target.emit('connection', socket)
    process.nextTick(() => socket.resume())
  })
}
