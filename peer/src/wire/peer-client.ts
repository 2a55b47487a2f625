import type http2 from 'node:http2'
import { createClient } from '@connectrpc/connect'
import { createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node'
import { PeerService } from '../gen/peerdir/v1/peer_pb.ts'
import { SESSION_WINDOW, STREAM_WINDOW } from './flow-windows.ts'
import { PeerConnection, type PeerEndpoint } from './peer-connection.ts'

// Calling peers: Connect's gRPC client over connections PeerConnection makes (the serving side is
// transport.ts).

/** Opens a large receive window on each session the client makes, once. */
class TunedSessionManager extends Http2SessionManager {
  readonly #tuned = new WeakSet<http2.ClientHttp2Session>()

  override async request(
    method: string,
    path: string,
    headers: http2.OutgoingHttpHeaders,
    options: Omit<http2.ClientSessionRequestOptions, 'signal'>,
  ): Promise<http2.ClientHttp2Stream> {
    const stream = await super.request(method, path, headers, options)
    const session = stream.session as http2.ClientHttp2Session | undefined
    if (session && !this.#tuned.has(session)) {
      this.#tuned.add(session)
      session.setLocalWindowSize(SESSION_WINDOW)
    }
    return stream
  }
}

/** A peer to call: a URL alone (no key: plaintext, or CA-checked https://), or as the directory lists it. */
export type PeerTarget = string | PeerEndpoint | PeerConnection

/** The connection maker for a target: every dial goes through PeerConnection (peer-connection.ts). */
export const peerConnection = (target: PeerTarget): PeerConnection =>
  target instanceof PeerConnection
    ? target
    : new PeerConnection(typeof target === 'string' ? { url: target, key: null } : target)

export function grpcTransport(target: PeerTarget) {
  const connection = peerConnection(target)
  const baseUrl = connection.url.href
  return createGrpcTransport({
    baseUrl,
    sessionManager: new TunedSessionManager(
      baseUrl,
      { pingIntervalMs: 15_000, pingTimeoutMs: 10_000, idleConnectionTimeoutMs: 60_000 },
      { settings: { initialWindowSize: STREAM_WINDOW }, createConnection: () => connection.open() },
    ),
    readMaxBytes: 8 * 1024 * 1024,
    writeMaxBytes: 8 * 1024 * 1024,
    acceptCompression: [],
  })
}

export const peerClient = (target: PeerTarget) => createClient(PeerService, grpcTransport(target))
