import http2 from 'node:http2'
import type net from 'node:net'
import { create, toBinary } from '@bufbuild/protobuf'
import { Code, ConnectError } from '@connectrpc/connect'
import { DownloadRequestSchema } from '../gen/peerdir/v1/peer_pb.ts'
import { ResponseParser } from './download-response-parser.ts'
import { segmentsOf } from './download-segments.ts'
import { SESSION_WINDOW, STREAM_WINDOW } from './flow-windows.ts'
import {
  DOWNLOAD_PATH,
  envelope,
  errorFromTrailers,
  GRPC_CONTENT_TYPE,
  isGrpcContentType,
} from './grpc-wire.ts'
import { type PeerTarget, peerConnection } from './peer-client.ts'
import type { PeerConnection, Route } from './peer-connection.ts'
import { SpareBuffers } from './spare-buffers.ts'

/** After a punched link is dropped, failures this soon are its calls' (fallBackToRelay). */
const FALL_BACK_MS = 30_000

/** Lets a source send DATA frames of up to 256 KiB instead of 16 KiB: fewer frames and reads per byte. */
const MAX_FRAME_BYTES = 256 * 1024

/** Segments handed on when the caller names no size. */
const DEFAULT_SEGMENT_BYTES = 1024 * 1024

/**
 * Segment buffers kept for the next calls: enough for the calls a downloader runs at once per source.
 * They are shared memory, so the downloader's hashing thread verifies a chunk where it landed.
 */
const KEPT_BUFFERS = 8

/** A call cancelled because its source's bytes moved to a punched link: its chunks are simply asked again. */
export class LinkMovedError extends Error {
  override readonly name = 'LinkMovedError'
  constructor(why = 'moved to a punched link') {
    super(why)
  }
}

/**
 * What to fetch; `segmentBytes`: hand the bytes on in pieces of this size, counted from `offset`;
 * `onBytes`: told how many file bytes arrived, before their segment is whole.
 */
export type DownloadCall = {
  sha256: string
  offset: number
  length: number
  segmentBytes?: number
  /** A reader waits on these bytes: the source serves this call before this caller's others. */
  readerWaiting?: boolean
  onBytes?: (bytes: number) => void
}

/**
 * The receiving side of PeerService.Download over gRPC, for one source: file bytes are copied once, as
 * they arrive, into recycled segment buffers handed on whole (a chunk each when the caller names the
 * chunk size), so the caller hashes and writes them where they landed. Connect's generic client would first assemble every message in a fresh buffer (an extra copy
 * and 512 KiB of garbage per message, which caps a downloader's rate and inflates its memory). Speaks
 * to any gRPC server of PeerService: a peer's fast path or Connect's own handler.
 */
export class DownloadClient {
  readonly #connection: PeerConnection
  readonly #url: URL
  readonly #buffers = new SpareBuffers(KEPT_BUFFERS, { shared: true })
  #session: http2.ClientHttp2Session | undefined
  /** The calls in flight on the current session: moved (cancelled, to be asked again) when a punch succeeds. */
  readonly #inFlight = new Set<http2.ClientHttp2Stream>()
  readonly #moved = new WeakSet<http2.ClientHttp2Stream>()
  /** Calls whose whole answer (its trailers) arrived: a move leaves them be. */
  readonly #answered = new WeakSet<http2.ClientHttp2Stream>()
  /** The latest session on a punched link: the one fallBackToRelay drops. */
  #punchedSession: http2.ClientHttp2Session | undefined
  /** The punched session last fallen back from, and when. */
  #fellBack: { from: http2.ClientHttp2Session; at: number } | undefined
  readonly #stopMoving: () => void

  constructor(target: PeerTarget) {
    this.#connection = peerConnection(target)
    this.#url = this.#connection.url
    this.#stopMoving = this.#connection.onPunched(() => this.#moveToPunched())
  }

  /**
   * How the bytes reached the source (peer-connection.ts): `punched` once a call ran over a punched
   * link, even after that link closed with the transfer.
   */
  get route(): Route {
    return this.#punchedSession ? 'punched' : this.#connection.route
  }

  /**
   * Yields the bytes of [offset, offset + length) in order, in segments (see segmentsOf), each valid
   * only until the next is asked for. Fails with a ConnectError: the server's status, or Unavailable when the connection does.
   */
  async *download(
    call: DownloadCall,
    headers: Record<string, string> | undefined,
    signal: AbortSignal,
  ): AsyncGenerator<Buffer> {
    if (signal.aborted) throw new ConnectError('the download was cancelled', Code.Canceled)
    // To a relayed source: punch a direct link if none is up (at most once a minute after a failure).
    void this.#connection.punch()
    let stream: http2.ClientHttp2Stream
    let session: http2.ClientHttp2Session
    try {
      session = this.#connect()
      stream = session.request({
        ':method': 'POST',
        ':path': this.#url.pathname.replace(/\/$/, '') + DOWNLOAD_PATH,
        'content-type': GRPC_CONTENT_TYPE,
        te: 'trailers',
        ...headers,
      })
    } catch (err) {
      throw new ConnectError(err instanceof Error ? err.message : String(err), Code.Unavailable)
    }
    stream.on('error', () => {}) // reported through the response and the reads below, never unhandled
    this.#inFlight.add(stream)
    const request = create(DownloadRequestSchema, {
      sha256: call.sha256,
      offset: BigInt(call.offset),
      length: BigInt(call.length),
      readerWaiting: call.readerWaiting ?? false,
    })
    stream.end(envelope(toBinary(DownloadRequestSchema, request)))
    // A stream still pending (its connection has not come up: a port that accepts and never speaks)
    // would only close once ready, so never: it is destroyed instead, and the call ends now.
    const cancel = () => (stream.pending ? stream.destroy() : stream.close(http2.constants.NGHTTP2_CANCEL))
    signal.addEventListener('abort', cancel, { once: true })
    let trailers: http2.IncomingHttpHeaders | undefined
    stream.once('trailers', (received) => {
      this.#answered.add(stream)
      trailers = received
    })
    const parser = new ResponseParser(call.offset)
    try {
      const response = await responseHeaders(stream)
      if (response['grpc-status'] !== undefined) {
        trailers = response // trailers-only: the call failed before any message
      } else if (response[':status'] !== 200 || !isGrpcContentType(response['content-type'] as string)) {
        throw new ConnectError(
          `answered HTTP ${response[':status']}, not gRPC`,
          httpStatusCode(response[':status']),
        )
      }
      yield* segmentsOf(stream, parser, {
        length: call.length,
        segmentBytes: call.segmentBytes ?? DEFAULT_SEGMENT_BYTES,
        buffers: this.#buffers,
        onBytes: call.onBytes,
      })
    } catch (err) {
      if (signal.aborted) throw new ConnectError('the download was cancelled', Code.Canceled)
      if (this.#moved.has(stream)) throw new LinkMovedError()
      if (err instanceof ConnectError) throw err
      throw new ConnectError(err instanceof Error ? err.message : String(err), Code.Unavailable)
    } finally {
      this.#inFlight.delete(stream)
      signal.removeEventListener('abort', cancel)
      if (!stream.closed) cancel()
    }
    if (this.#moved.has(stream)) throw new LinkMovedError()
    const failure = errorFromTrailers(trailers)
    if (failure) throw failure
    parser.end()
    if (parser.position !== call.offset + call.length) {
      throw new ConnectError(`sent ${parser.position - call.offset} of ${call.length} bytes`, Code.DataLoss)
    }
  }

  close() {
    this.#stopMoving()
    this.#session?.close()
    this.#session = undefined
    this.#connection.close()
  }

  /**
   * A punched link came up: the calls going through the relay are cancelled as moved (their chunks are
   * asked again, over the punched link) and the relayed session closes, so the bytes stop crossing the
   * relay at once instead of when each call ends.
   */
  #moveToPunched() {
    const old = this.#session
    if (!old) return
    this.#session = undefined
    for (const stream of this.#inFlight) {
      // One whose answer has all arrived keeps it: its bytes are here already.
      if (this.#answered.has(stream)) continue
      this.#moved.add(stream)
      stream.close(http2.constants.NGHTTP2_CANCEL)
    }
    this.#inFlight.clear()
    old.close()
    // The punched link taken now, so the calls asked again go over it (the peer closes a session that
    // starts no call within 3 s: a source that has us queued loses it, and is punched again later).
    this.#connect()
  }

  /**
   * A call failed or stalled while this source's bytes may have come over a punched link: that link is
   * dropped (its other calls fail too) and the relay carries from now on, until a punch succeeds again.
   * True when there was such a link, for the failures of the FALL_BACK_MS that follow (those of its
   * other calls); after that a failure is the source's, as through the relay.
   */
  fallBackToRelay(): boolean {
    const punched = this.#punchedSession
    if (!punched) return false
    if (this.#fellBack?.from === punched) return Date.now() - this.#fellBack.at < FALL_BACK_MS
    this.#fellBack = { from: punched, at: Date.now() }
    if (this.#session === punched) this.#session = undefined
    punched.destroy()
    this.#connection.abandonPunched()
    return true
  }

  #connect(): http2.ClientHttp2Session {
    if (this.#session && !this.#session.closed && !this.#session.destroyed) return this.#session
    let opened: net.Socket | undefined
    const session = http2.connect(this.#url.origin, {
      settings: { initialWindowSize: STREAM_WINDOW, maxFrameSize: MAX_FRAME_BYTES },
      createConnection: () => {
        opened = this.#connection.openForBytes()
        return opened
      },
    })
    if (opened && this.#connection.isPunched(opened)) this.#punchedSession = session
    session.on('error', () => {}) // surfaces on its streams, as Unavailable
    session.once('connect', () => session.setLocalWindowSize(SESSION_WINDOW))
    session.once('close', () => {
      if (this.#session === session) this.#session = undefined
    })
    this.#session = session
    return session
  }
}

function responseHeaders(
  stream: http2.ClientHttp2Stream,
): Promise<http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader> {
  return new Promise((resolve, reject) => {
    stream.once('response', resolve)
    stream.once('error', reject)
    stream.once('close', () => reject(new Error('the stream closed before its response')))
  })
}

function httpStatusCode(status: unknown): Code {
  switch (status) {
    case 401:
      return Code.Unauthenticated
    case 403:
      return Code.PermissionDenied
    case 404:
      return Code.Unimplemented
    case 429:
    case 502:
    case 503:
    case 504:
      return Code.Unavailable
    default:
      return Code.Unknown
  }
}
