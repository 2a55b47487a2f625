import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import { fromBinary } from '@bufbuild/protobuf'
import { Code, ConnectError } from '@connectrpc/connect'
import { DownloadRequestSchema } from '../gen/peerdir/v1/peer_pb.ts'
import {
  DOWNLOAD_PATH,
  ENVELOPE_BYTES,
  GRPC_CONTENT_TYPE,
  isGrpcContentType,
  statusTrailers,
  varintLength,
  writeVarint,
} from '../wire/grpc-wire.ts'
import { SpareBuffers } from '../wire/spare-buffers.ts'
import {
  checkDownload,
  MESSAGE_BYTES,
  type RangeServing,
  servedRange,
  slotAccount,
  slotFor,
} from './served-range.ts'

/** A Download request is a few dozen bytes; anything much larger is not one. */
const MAX_REQUEST_BYTES = 4096
/**
 * Read buffers per call, made as needed: one being read while the other waits in the socket's queue.
 * Few, because a caller that stops reading pins them: memory per stalled call stays at 1 MiB.
 */
const BUFFERS_PER_CALL = 2
/** Read buffers kept between calls, for the calls served at once (more are made, then let go). */
const KEPT_BUFFERS = 16

export type DownloadFastPathOptions = {
  service: RangeServing
  /** The same caller check the Connect interceptor applies: resolves, or throws a ConnectError. */
  verifyPeer: (authorization: string | null) => Promise<string>
}

/**
 * PeerService.Download over gRPC on HTTP/2, served without Connect's per-message encoding: each file
 * piece is read into a recycled buffer and written to the stream behind a hand-made envelope and
 * protobuf field header, so the bytes are never copied or re-encoded in JavaScript. Same checks, same
 * wire format, same status codes as the Connect handler, which still serves gRPC-web, the Connect
 * protocol and HTTP/1.1. Returns false for any request it does not take.
 */
export function downloadFastPath(options: DownloadFastPathOptions) {
  const spare = new SpareBuffers(KEPT_BUFFERS)
  return (req: Http2ServerRequest, res: Http2ServerResponse): boolean => {
    if (
      req.httpVersionMajor !== 2 ||
      req.method !== 'POST' ||
      req.url !== DOWNLOAD_PATH ||
      !isGrpcContentType(req.headers['content-type']) ||
      (req.headers['grpc-encoding'] ?? 'identity') !== 'identity'
    ) {
      return false
    }
    // Whatever goes wrong answering one call must end that call, never the daemon.
    serve(options, spare, req, res).catch(() => req.stream.destroy())
    return true
  }
}

async function serve(
  options: DownloadFastPathOptions,
  spare: SpareBuffers,
  req: Http2ServerRequest,
  res: Http2ServerResponse,
) {
  const pool = new BufferPool(BUFFERS_PER_CALL, MESSAGE_BYTES, spare)
  try {
    await answer(options, pool, req, res)
  } finally {
    pool.close()
  }
}

async function answer(
  options: DownloadFastPathOptions,
  pool: BufferPool,
  req: Http2ServerRequest,
  res: Http2ServerResponse,
) {
  const stream = req.stream
  const closed = new AbortController()
  stream.once('close', () => closed.abort())
  stream.on('error', () => {}) // a caller that goes away mid-call is not the server's problem
  let responded = false
  let failure: ConnectError | undefined
  try {
    const request = parseRequest(await readBody(req))
    const caller = await options.verifyPeer(headerValue(req.headers.authorization))
    const range = await checkDownload(options.service, request)
    const account = slotAccount(caller, req.socket?.remoteAddress ?? '')
    const slot = await slotFor(options.service, account, closed.signal)
    try {
      if (closed.signal.aborted) return
      stream.respond(
        { ':status': 200, 'content-type': GRPC_CONTENT_TYPE, 'grpc-accept-encoding': 'identity' },
        { waitForTrailers: true },
      )
      responded = true
      const turn = { caller, readerWaiting: request.readerWaiting }
      const take = () => pool.take(closed.signal)
      for await (const { offset, data } of servedRange(
        options.service,
        turn,
        range,
        closed.signal,
        take,
        slot,
      )) {
        stream.write(messageHeader(offset, data.length))
        // No wait for 'drain': the pool is the backpressure. Reads run ahead of the socket by at most
        // its few buffers, and a buffer comes back only once the stream has sent its bytes.
        stream.write(data, () => pool.give(data))
        if (closed.signal.aborted) return
      }
    } finally {
      slot?.release()
    }
  } catch (err) {
    if (closed.signal.aborted) return
    failure =
      err instanceof ConnectError
        ? err
        : new ConnectError('the peer could not read the file it shares', Code.Internal)
  }
  if (stream.destroyed || stream.closed) return
  // Node's compatibility layer owns this stream's trailers: hand them over before ending it.
  if (responded) {
    res.addTrailers(statusTrailers(failure))
    stream.end()
  } else
    stream.respond(
      { ':status': 200, 'content-type': GRPC_CONTENT_TYPE, ...statusTrailers(failure) },
      { endStream: true },
    )
}

async function readBody(req: Http2ServerRequest): Promise<Buffer> {
  const parts: Buffer[] = []
  let size = 0
  for await (const part of req) {
    size += (part as Buffer).length
    if (size > MAX_REQUEST_BYTES)
      throw new ConnectError(
        `a Download request is at most ${MAX_REQUEST_BYTES} bytes`,
        Code.ResourceExhausted,
      )
    parts.push(part as Buffer)
  }
  return Buffer.concat(parts)
}

function parseRequest(body: Buffer) {
  if (body.length < ENVELOPE_BYTES || body.readUInt32BE(1) !== body.length - ENVELOPE_BYTES) {
    throw new ConnectError('a Download call carries exactly one request message', Code.InvalidArgument)
  }
  if (body[0] !== 0) throw new ConnectError('compressed requests are not accepted', Code.Unimplemented)
  try {
    return fromBinary(DownloadRequestSchema, body.subarray(ENVELOPE_BYTES))
  } catch {
    throw new ConnectError('the request is not a valid DownloadRequest', Code.InvalidArgument)
  }
}

/** Envelope plus the protobuf bytes before `data`'s payload: field 1 (offset), then field 2's tag and length. */
function messageHeader(offset: number, length: number): Buffer {
  const fields = 1 + varintLength(offset) + 1 + varintLength(length)
  const header = Buffer.allocUnsafe(ENVELOPE_BYTES + fields)
  header[0] = 0
  header.writeUInt32BE(fields + length, 1)
  header[ENVELOPE_BYTES] = 0x08
  const next = writeVarint(header, ENVELOPE_BYTES + 1, offset)
  header[next] = 0x12
  writeVarint(header, next + 1, length)
  return header
}

const headerValue = (value: string | string[] | undefined) =>
  (Array.isArray(value) ? value[0] : value) ?? null

/**
 * At most `count` buffers for one call, taken from `spare` on first need and handed out in turn; one
 * comes back once the socket has sent its bytes. Once the call is over, they go back to `spare`.
 */
class BufferPool {
  readonly #free: Buffer[] = []
  readonly #waiting: ((buffer: Buffer) => void)[] = []
  readonly #count: number
  readonly #size: number
  readonly #spare: SpareBuffers
  #made = 0
  #closed = false

  constructor(count: number, size: number, spare: SpareBuffers) {
    this.#count = count
    this.#size = size
    this.#spare = spare
  }

  take(signal: AbortSignal): Buffer | Promise<Buffer> {
    const free = this.#free.pop()
    if (free) return free
    if (this.#made < this.#count) {
      this.#made++
      return this.#spare.take(this.#size)
    }
    return new Promise((resolve, reject) => {
      this.#waiting.push(resolve)
      signal.addEventListener(
        'abort',
        () => reject(new ConnectError('the caller went away', Code.Canceled)),
        {
          once: true,
        },
      )
    })
  }

  give(view: Buffer) {
    const buffer = Buffer.from(view.buffer, view.byteOffset, this.#size)
    const next = this.#waiting.shift()
    if (this.#closed) this.#spare.give(buffer)
    else if (next) next(buffer)
    else this.#free.push(buffer)
  }

  /** The call is over: buffers still being sent go back to the spare ones as they come back. */
  close() {
    this.#closed = true
    for (const buffer of this.#free.splice(0)) this.#spare.give(buffer)
  }
}
