import { once } from 'node:events'
import { createReadStream } from 'node:fs'
import type http from 'node:http'
import type http2 from 'node:http2'
import { Code, ConnectError } from '@connectrpc/connect'
import type { ShareIndex } from '../content/share-index.ts'
import { carriesControlToken } from '../wire/auth.ts'
import type { DirectoryClient } from '../wire/directory-client.ts'
import type { PlainHttp } from '../wire/transport.ts'
import { type ByteRange, parseRange } from './byte-range.ts'
import { contentLookup } from './content-lookup.ts'
import { contentType } from './content-type.ts'
import type { DirectorySession } from './directory-session.ts'
import type { Downloads, Wanted } from './downloads.ts'
import type { GatewayCapabilities } from './gateway-capability.ts'

export type GatewayRequest = http.IncomingMessage | http2.Http2ServerRequest
export type GatewayResponse = http.ServerResponse | http2.Http2ServerResponse
/** What both responses share and the gateway uses (writeHead, write with drain, end, destroy). */
type Response = http.ServerResponse

type GatewayDaemon = {
  readonly sharedDir: string
  rescan: () => Promise<unknown>
  readonly directory: DirectoryClient
  readonly session: DirectorySession
  readonly index: ShareIndex
  readonly downloads: Downloads
}

const CONTENT_PATH = /^\/content\/([0-9a-f]{64})(?:\?(.*))?$/i

/** True for the requests the gateway answers (`/content/<sha256>`); the rest are RPCs. */
const isContentRequest = (req: GatewayRequest) => (req.url ?? '').startsWith('/content/')

/**
 * `GET` and `HEAD /content/<sha256>`: a content's bytes over plain HTTP, with one `Range` per request,
 * so a media player or a browser on this machine plays a file while it downloads. A content this peer
 * shares comes from its file; any other from its transfer (started here if none runs, kept in the shared
 * folder unless `?keep=0`), each range as soon as its chunks are verified, the download steered to it.
 * Only the owner may make the daemon fetch: on the control socket (`asOwner`), or with the URL's
 * capability (`?cap=`, `peer url`); anyone else is served what is shared already. Who may ask at all is
 * decided where it is mounted (gatewayOnNetwork, gatewayOnControl).
 */
export function contentGateway(daemon: GatewayDaemon, capabilities: GatewayCapabilities) {
  const { variantsOf } = contentLookup(daemon)

  return async (req: GatewayRequest, response: GatewayResponse, asOwner: boolean) => {
    const res = response as Response
    // From the start: a caller may leave during any await below.
    const gone = new AbortController()
    res.once('close', () => gone.abort())
    const match = CONTENT_PATH.exec(req.url ?? '')
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return answer(res, 405, 'only GET and HEAD are served here', { allow: 'GET, HEAD' })
    }
    if (!match) return answer(res, 404, 'ask for /content/<sha256 in hex>')
    const sha256 = (match[1] as string).toLowerCase()
    const query = new URLSearchParams(match[2] ?? '')
    const keep = query.get('keep') !== '0'
    const local = daemon.index.get(sha256)
    if (local) {
      if (await daemon.index.unchanged(local)) {
        return serve(req, res, gone.signal, { name: local.name, size: local.size, sha256 }, (range) =>
          createReadStream(local.path, { start: range.start, end: range.end - 1 }),
        )
      }
      // Changed or gone since it was hashed: its bytes are no longer that content.
      void daemon.rescan()
      return answer(res, 503, 'the shared file changed since it was indexed; it is being indexed again')
    }
    if (!asOwner && !capabilities.allows(sha256, query.get('cap'))) {
      // Not found for whoever may not fetch; refused for a URL whose capability is wrong.
      return answer(res, query.has('cap') ? 403 : 404, notLocal(sha256, query.has('cap')))
    }
    let transfer = daemon.downloads.running(sha256, daemon.sharedDir)
    let variant = transfer?.variant
    let wanted: Wanted | undefined
    if (!variant) {
      try {
        wanted = await variantsOf(sha256)
        variant = wanted.variants[0] as NonNullable<typeof variant>
      } catch (err) {
        const error = ConnectError.from(err)
        const status = error.code === Code.NotFound ? 404 : error.code === Code.Unavailable ? 503 : 502
        return answer(res, status, error.rawMessage)
      }
    }
    const file = { name: variant.name, size: variant.size, sha256 }
    const range = requestedRange(req, file)
    // What needs no byte (HEAD, an impossible range) starts no download.
    if (req.method === 'HEAD' || range === 'unsatisfiable' || gone.signal.aborted) {
      return serve(req, res, gone.signal, file, nothing)
    }
    transfer = daemon.downloads.running(sha256, daemon.sharedDir)
    if (!transfer) {
      try {
        transfer = daemon.downloads.start(wanted ?? (await variantsOf(sha256)), daemon.sharedDir, { keep })
      } catch (err) {
        return answer(res, 502, ConnectError.from(err).rawMessage)
      }
    } else if (keep) {
      transfer.keep()
    }
    const running = transfer
    // Held from here, so the transfer cannot end unheld between finding it and reading it; a player
    // that closes one request to open the next (a seek) finds it still running.
    const release = daemon.downloads.hold(running)
    try {
      await serve(
        req,
        res,
        gone.signal,
        file,
        (wanted) => running.readers.read(wanted.start, wanted.end, gone.signal),
        () => running.done,
      )
    } finally {
      setTimeout(release, keep ? 0 : SEEK_GRACE_MS).unref()
    }
  }
}

async function* nothing(): AsyncGenerator<Uint8Array> {}

const notLocal = (sha256: string, withCapability: boolean) =>
  `${withCapability ? 'this URL’s capability is not the one for this content, and ' : ''}this peer does not have ${sha256} yet; only the daemon’s owner may make it fetch it: \`peer url ${sha256}\` prints a URL that does`

/**
 * What a peer published may be a page or a script: it must not run with this origin's rights, so what a
 * browser renders as a document is sandboxed (an origin of its own, no script). Audio and video are the
 * exception: opened directly, the browser makes a page around them whose player fetches the same URL
 * again, with `Range`, as a same-origin request; sandboxed, that page's origin is opaque and the gateway
 * refuses its requests as another site's. Their bytes cannot run (nosniff keeps them media), and the page
 * is the browser's own: it may load media from this origin and nothing else.
 */
const securityPolicy = (type: string) =>
  /^(audio|video)\//.test(type) ? "default-src 'none'; media-src 'self'" : 'sandbox'

type ServedFile = { name: string; size: number; sha256: string }

/** A content's bytes never change under its sha256: the strongest validator there is. */
const entityTag = (file: ServedFile) => `"${file.sha256}"`

/**
 * The range a request asks for. With `If-Range` (RFC 9110 §13.1.5), only if it names this content's
 * entity tag, compared strongly; a date never matches (no Last-Modified is sent), and a validator that
 * does not match asks for the whole content (200), as the copy the client holds a part of is another.
 */
function requestedRange(req: GatewayRequest, file: ServedFile) {
  const ifRange = header(req, 'if-range')
  if (ifRange !== undefined && ifRange.trim() !== entityTag(file)) return undefined
  return parseRange(header(req, 'range'), file.size)
}

/** How long a `?keep=0` transfer outlives its last request: a player's next Range arrives within it. */
const SEEK_GRACE_MS = 3000

/**
 * Answers one request for `file`: headers once the first byte is there (a transfer that fails first
 * gets an error status, not a cut-short 200), then the bytes with backpressure. A whole-content answer
 * that comes from a transfer holds its last slice back until the whole file matched its sha256.
 */
async function serve(
  req: GatewayRequest,
  res: Response,
  gone: AbortSignal,
  file: ServedFile,
  bytes: (range: ByteRange) => AsyncIterable<Uint8Array>,
  verifiedWhole?: () => Promise<unknown>,
) {
  const range = requestedRange(req, file)
  const type = contentType(file.name)
  const headers: Record<string, string> = {
    etag: entityTag(file),
    'content-type': type,
    'accept-ranges': 'bytes',
    'content-disposition': `inline; filename*=UTF-8''${encodeURIComponent(file.name)}`,
    'content-security-policy': securityPolicy(type),
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-store',
  }
  if (range === 'unsatisfiable') {
    return answer(res, 416, `the content has ${file.size} bytes`, { 'content-range': `bytes */${file.size}` })
  }
  const wanted = range ?? { start: 0, end: file.size }
  headers['content-length'] = String(wanted.end - wanted.start)
  if (range) headers['content-range'] = `bytes ${range.start}-${range.end - 1}/${file.size}`
  const status = range ? 206 : 200
  if (req.method === 'HEAD' || wanted.end === wanted.start) {
    res.writeHead(status, headers)
    return void res.end()
  }
  const slices = bytes(wanted)[Symbol.asyncIterator]()
  let slice: IteratorResult<Uint8Array>
  try {
    slice = await slices.next()
  } catch (err) {
    return answer(res, 502, `the content could not be fetched: ${err instanceof Error ? err.message : err}`)
  }
  if (gone.aborted) return
  res.writeHead(status, headers)
  const holdLast = !range && verifiedWhole !== undefined
  try {
    while (!slice.done) {
      const next = await slices.next()
      if (next.done && holdLast) await verifiedWhole()
      if (gone.aborted) return
      if (!res.write(slice.value)) await once(res, 'drain', { signal: gone })
      slice = next
    }
    res.end()
  } catch {
    // The transfer failed or the caller left: a cut-short body is how HTTP says so after the headers.
    res.destroy()
  } finally {
    await slices.return?.()
  }
}

function answer(res: Response, status: number, message: string, extra: Record<string, string> = {}) {
  const body = `${message}\n`
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    ...extra,
  })
  res.end(body)
}

const header = (req: GatewayRequest, name: string): string | undefined => {
  const value = req.headers[name]
  return Array.isArray(value) ? value[0] : value
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/

/**
 * On the network port the gateway answers this machine only: a caller on a loopback address naming
 * the daemon by a loopback host and its port, not on behalf of a page of another site. The Host check
 * keeps out a web page that reaches the port through DNS rebinding (its requests carry the page's own
 * host name). Returns why a request is refused, or undefined.
 */
export function refusedCaller(req: GatewayRequest, port: number): string | undefined {
  if (!LOOPBACK.test(req.socket?.remoteAddress ?? '')) return 'the gateway answers only this machine'
  const host = (header(req, ':authority') ?? header(req, 'host') ?? '').toLowerCase()
  const allowed = [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]
  if (!allowed.includes(host)) {
    return `the gateway answers only requests to ${allowed.join(', ')} (this one named ${JSON.stringify(host)})`
  }
  // A page on another site may embed or fetch this URL (it cannot read the answer, but the request
  // alone would start a download): browsers say so, players and curl send neither header.
  const site = header(req, 'sec-fetch-site')
  const origin = header(req, 'origin')
  if (
    (site && site !== 'none' && site !== 'same-origin') ||
    (origin && !allowed.some((a) => origin === `http://${a}` || origin === `https://${a}`))
  ) {
    return 'the gateway answers no request a page of another site makes'
  }
  return undefined
}

type Gateway = ReturnType<typeof contentGateway>

const run = (gateway: Gateway, req: GatewayRequest, res: GatewayResponse, asOwner: boolean) =>
  void gateway(req, res, asOwner).catch(() => res.destroy())

/** The gateway on the network port: content requests from this machine, named by a loopback host. */
export const gatewayOnNetwork =
  (gateway: Gateway, port: number): PlainHttp =>
  (req, res) => {
    if (!isContentRequest(req)) return false
    const why = refusedCaller(req, port)
    if (why) answer(res as Response, 403, why)
    else run(gateway, req, res, false)
    return true
  }

/** The gateway on the control socket (`peer cat`): the CLI's control token, as for every control call. */
export const gatewayOnControl =
  (gateway: Gateway, controlToken: string): PlainHttp =>
  (req, res) => {
    if (!isContentRequest(req)) return false
    if (!carriesControlToken(header(req, 'authorization'), controlToken)) {
      answer(
        res as Response,
        403,
        'content reads on this socket need the token in the daemon’s state directory',
      )
    } else {
      run(gateway, req, res, true)
    }
    return true
  }
