import http2 from 'node:http2'
import net from 'node:net'
import tls from 'node:tls'

/** What a raw tunnel request got: the relay's answer head (or its whole refusal) and, on a 101, the open tunnel. */
export type RawTunnel = { answer: string; socket?: net.Socket }

/**
 * Asks a relay for a tunnel to `username` over a raw connection from `localAddress` (the relay counts
 * callers by address), as the downloader does (relay-tunnel.ts) but with nothing hidden: resolves with
 * the answer's head and the tunnel paused right after it, or with the whole refusal once the relay
 * closes the connection.
 */
export function rawTunnel(
  port: number,
  username: string,
  options: { host?: string; localAddress?: string; headers?: string } = {},
): Promise<RawTunnel> {
  const host = options.host ?? '127.0.0.1'
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, localAddress: options.localAddress })
    let received = Buffer.alloc(0)
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      const end = received.indexOf('\r\n\r\n')
      if (end < 0) return
      const head = received.toString('latin1', 0, end)
      if (head.startsWith('HTTP/1.1 101')) {
        socket.off('data', onData)
        socket.pause()
        socket.unshift(received.subarray(end + 4))
        resolve({ answer: head, socket })
      }
    }
    socket.on('data', onData)
    socket.once('close', () => resolve({ answer: received.toString('utf8') }))
    socket.on('error', reject)
    socket.write(
      `GET /relayed/${username} HTTP/1.1\r\nhost: ${host}:${port}\r\nconnection: upgrade\r\nupgrade: peerdir-tunnel/1\r\n${options.headers ?? ''}\r\n`,
    )
  })
}

/**
 * An HTTP/2 client session inside an open tunnel: plaintext, or TLS (checking no certificate: a caller
 * that wants only to hold the peer's tunnels cares for no key) to a peer that serves TLS.
 */
export function sessionIn(
  tunnel: net.Socket,
  inner: 'plaintext' | 'tls' = 'plaintext',
): http2.ClientHttp2Session {
  const connection =
    inner === 'tls'
      ? tls.connect({ socket: tunnel, ALPNProtocols: ['h2'], rejectUnauthorized: false })
      : tunnel
  const session = http2.connect(`${inner === 'tls' ? 'https' : 'http'}://tunnelled`, {
    createConnection: () => connection,
  })
  session.on('error', () => {})
  return session
}

/**
 * Serves on a link's connection as a relayed peer does (the relay its HTTP/2 client): each CONNECT
 * stream is a tunnel, answered 200 (`plaintext`) and served by `inner` (an HTTP/2 server: what the
 * peer's port would be) unless `onTunnel` takes it. Other streams are refused with 405.
 */
export function serveTunnels(
  link: net.Socket,
  inner: http2.Http2Server,
  onTunnel?: (stream: http2.ServerHttp2Stream) => boolean,
) {
  const server = http2.createServer()
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {})
    if (headers[':method'] !== 'CONNECT') return stream.respond({ ':status': 405 }, { endStream: true })
    if (onTunnel?.(stream)) return
    stream.respond({ ':status': 200, 'peerdir-inner': 'plaintext' })
    inner.emit('connection', stream)
  })
  server.emit('connection', link)
}

/** A peer's port answering every call `grpc-status: 0` at once. */
export function answeringPeer(): http2.Http2Server {
  const inner = http2.createServer()
  inner.on('stream', (stream) => {
    stream.on('error', () => {})
    stream.on('data', () => {})
    stream.respond(
      { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '0' },
      { endStream: true },
    )
  })
  return inner
}
