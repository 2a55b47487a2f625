import { create, toBinary } from '@bufbuild/protobuf'
import { Code, ConnectError } from '@connectrpc/connect'
import { DownloadRequestSchema } from '../gen/peerdir/v1/peer_pb.ts'
import { ResponseParser } from './download-response-parser.ts'
import { SegmentLanding } from './download-segments.ts'
import { SESSION_WINDOW, STREAM_WINDOW } from './flow-windows.ts'
import {
  DOWNLOAD_PATH,
  envelope,
  errorFromTrailers,
  GRPC_CONTENT_TYPE,
  isGrpcContentType,
} from './grpc-wire.ts'
import { H2ClientSession, type H2Stream } from './h2-session.ts'
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
 * The largest segment handed on: a quarter of the call's window. A call's window reopens only as its
 * segments are let go (SegmentLanding), so a segment must fit in the window several times over: one
 * the caller holds, whole ones waiting, one filling. A larger chunk comes in pieces of this size.
 */
const MAX_SEGMENT_BYTES = STREAM_WINDOW / 4

/**
 * Segment buffers kept for the next calls: what the calls a downloader runs at once per source (4) fill
 * of 1 MiB chunks, each up to its window ahead of the disk (SegmentLanding). They are shared memory,
 * so the downloader's hashing thread verifies a chunk where it landed.
 */
const KEPT_BUFFERS = 4 * (STREAM_WINDOW / (1024 * 1024) + 2)

/** A call cancelled because its source's bytes moved to a punched link: its chunks are simply asked again. */
export class LinkMovedError extends Error {
  override readonly name = 'LinkMovedError'
  constructor(why = 'moved to a punched link') {
    super(why)
  }
}

/**
 * What to fetch; `segmentBytes`: hand the bytes on in pieces of this size (at most MAX_SEGMENT_BYTES),
 * counted from `offset`;
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

/** A call under way: cancelled as moved when a punch succeeds, unless its whole answer is in. */
type InFlight = { stream: H2Stream; landing: SegmentLanding }

/**
 * The receiving side of PeerService.Download over gRPC, for one source: file bytes are copied once, as
 * they are read, into recycled segment buffers handed on whole (a chunk each when the caller names the
 * chunk size), so the caller hashes and writes them where they landed. Its HTTP/2 is its own
 * (h2-session.ts): node:http2 makes a buffer per read and runs each through a stream, which cost a
 * downloading daemon about as much CPU as TLS itself. Connect's generic client would also assemble
 * every message in a fresh buffer (an extra copy and 512 KiB of garbage per message). Speaks to any
 * gRPC server of PeerService: a peer's fast path or Connect's own handler.
 */
export class DownloadClient {
  readonly #connection: PeerConnection
  readonly #url: URL
  readonly #buffers = new SpareBuffers(KEPT_BUFFERS, { shared: true })
  #session: H2ClientSession | undefined
  /** The calls in flight on the current session: moved (cancelled, to be asked again) when a punch succeeds. */
  readonly #inFlight = new Set<InFlight>()
  readonly #moved = new WeakSet<SegmentLanding>()
  /** The latest session on a punched link: the one fallBackToRelay drops. */
  #punchedSession: H2ClientSession | undefined
  /** The punched session last fallen back from, and when. */
  #fellBack: { from: H2ClientSession; at: number } | undefined
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
   * Yields the bytes of [offset, offset + length) in order, in segments (see SegmentLanding), each valid
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
    const request = create(DownloadRequestSchema, {
      sha256: call.sha256,
      offset: BigInt(call.offset),
      length: BigInt(call.length),
      readerWaiting: call.readerWaiting ?? false,
    })
    const parser = new ResponseParser(call.offset)
    const landing = new SegmentLanding(parser, {
      length: call.length,
      segmentBytes: Math.min(call.segmentBytes ?? DEFAULT_SEGMENT_BYTES, MAX_SEGMENT_BYTES),
      buffers: this.#buffers,
      onBytes: call.onBytes,
    })
    let stream: H2Stream
    try {
      stream = this.#connect().request(
        this.#url.pathname.replace(/\/$/, '') + DOWNLOAD_PATH,
        [['content-type', GRPC_CONTENT_TYPE], ['te', 'trailers'], ...Object.entries(headers ?? {})],
        envelope(toBinary(DownloadRequestSchema, request)),
        landing,
      )
    } catch (err) {
      throw new ConnectError(err instanceof Error ? err.message : String(err), Code.Unavailable)
    }
    landing.stream = stream
    const inFlight = { stream, landing }
    this.#inFlight.add(inFlight)
    const cancel = () => {
      stream.cancel()
      landing.onError(new Error('cancelled'))
    }
    signal.addEventListener('abort', cancel, { once: true })
    let trailers: Record<string, string> | undefined
    try {
      const response = await landing.response
      if (response['grpc-status'] !== undefined) {
        trailers = response // trailers-only: the call failed before any message
      } else if (response[':status'] !== '200' || !isGrpcContentType(response['content-type'])) {
        throw new ConnectError(
          `answered HTTP ${response[':status']}, not gRPC`,
          httpStatusCode(Number(response[':status'])),
        )
      } else {
        yield* landing.segments()
        trailers = landing.trailers
      }
    } catch (err) {
      if (signal.aborted) throw new ConnectError('the download was cancelled', Code.Canceled)
      if (this.#moved.has(landing)) throw new LinkMovedError()
      if (err instanceof ConnectError) throw err
      throw new ConnectError(err instanceof Error ? err.message : String(err), Code.Unavailable)
    } finally {
      this.#inFlight.delete(inFlight)
      signal.removeEventListener('abort', cancel)
      stream.cancel() // a no-op once the answer ended
      landing.close()
    }
    if (this.#moved.has(landing)) throw new LinkMovedError()
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
    for (const { stream, landing } of this.#inFlight) {
      // One whose answer has all arrived keeps it: its bytes are here already.
      if (landing.answered) continue
      this.#moved.add(landing)
      stream.cancel()
      landing.onError(new LinkMovedError())
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

  #connect(): H2ClientSession {
    if (this.#session && !this.#session.closed) return this.#session
    let made: H2ClientSession | undefined
    // A connection this side makes reads into the sessions' shared buffer; a punched link or a relay's
    // tunnel, made already, is read as a stream.
    const opened = this.#connection.openForBytes(H2ClientSession.reader(() => made))
    const session = new H2ClientSession(opened, {
      streamWindow: STREAM_WINDOW,
      sessionWindow: SESSION_WINDOW,
      maxFrameBytes: MAX_FRAME_BYTES,
      origin: this.#url,
    })
    made = session
    if (this.#connection.isPunched(opened)) this.#punchedSession = session
    session.onClose(() => {
      if (this.#session === session) this.#session = undefined
    })
    this.#session = session
    return session
  }
}

function httpStatusCode(status: number): Code {
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
