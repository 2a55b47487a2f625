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
import type { Downloads } from './downloads.ts'

export type GatewayRequest = http.IncomingMessage | http2.Http2ServerRequest
export type GatewayResponse = http.ServerResponse | http2.Http2ServerResponse
/** What both responses share and the gateway uses (writeHead, write with drain, end, destroy). */
type Response = http.ServerResponse

type GatewayDaemon = {
  readonly sharedDir: string
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
 * Who may ask is the caller's business (see localCallerOnly and the control socket).
 */
export function contentGateway(daemon: GatewayDaemon) {
  const { variantsOf } = contentLookup(daemon)

  return async (req: GatewayRequest, response: GatewayResponse) => {
    const res = response as Response
    const match = CONTENT_PATH.exec(req.url ?? '')
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return answer(res, 405, 'only GET and HEAD are served here', { allow: 'GET, HEAD' })
    }
    if (!match) return answer(res, 404, 'ask for /content/<sha256 in hex>')
    const sha256 = (match[1] as string).toLowerCase()
    const keep = new URLSearchParams(match[2] ?? '').get('keep') !== '0'
    const local = daemon.index.get(sha256)
    if (local) {
      return serve(req, res, { name: local.name, size: local.size }, (range) =>
        createReadStream(local.path, { start: range.start, end: range.end - 1 }),
      )
    }
    let transfer = daemon.downloads.running(sha256, daemon.sharedDir)
    if (!transfer) {
      try {
        transfer = daemon.downloads.start(await variantsOf(sha256), daemon.sharedDir, { keep })
      } catch (err) {
        const error = ConnectError.from(err)
        const status = error.code === Code.NotFound ? 404 : error.code === Code.Unavailable ? 503 : 502
        return answer(res, status, error.rawMessage)
      }
    } else if (keep) {
      transfer.readers.keep()
    }
    // Held from here, so the transfer cannot end unheld between finding it and reading it.
    const release = transfer.readers.hold()
    const abort = new AbortController()
    res.once('close', () => abort.abort())
    try {
      const variant = transfer.variant()
      await serve(req, res, { name: variant.name, size: variant.size }, (range) =>
        transfer.readers.read(range.start, range.end, abort.signal),
      )
    } finally {
      release()
    }
  }
}

async function serve(
  req: GatewayRequest,
  res: Response,
  file: { name: string; size: number },
  bytes: (range: ByteRange) => AsyncIterable<Uint8Array>,
) {
  const range = parseRange(header(req, 'range'), file.size)
  const headers: Record<string, string> = {
    'content-type': contentType(file.name),
    'accept-ranges': 'bytes',
    'content-disposition': `inline; filename*=UTF-8''${encodeURIComponent(file.name)}`,
    // What a peer published may be a page or a script: it must not run with this origin's rights.
    'content-security-policy': 'sandbox',
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-store',
  }
  if (range === 'unsatisfiable') {
    return answer(res, 416, `the content has ${file.size} bytes`, { 'content-range': `bytes */${file.size}` })
  }
  const wanted = range ?? { start: 0, end: file.size }
  headers['content-length'] = String(wanted.end - wanted.start)
  if (range) headers['content-range'] = `bytes ${range.start}-${range.end - 1}/${file.size}`
  res.writeHead(range ? 206 : 200, headers)
  if (req.method === 'HEAD' || wanted.end === wanted.start) return void res.end()
  const gone = closed(res)
  try {
    for await (const slice of bytes(wanted)) {
      if (res.destroyed) return
      if (!res.write(slice)) await once(res, 'drain', { signal: gone })
    }
    res.end()
  } catch {
    // The transfer failed or the caller left: a cut-short body is how HTTP says so after the headers.
    res.destroy()
  }
}

function closed(res: Response): AbortSignal {
  const controller = new AbortController()
  res.once('close', () => controller.abort())
  return controller.signal
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
 * the daemon by a loopback host and its port. The Host check keeps out a web page that reaches the
 * port through DNS rebinding (its requests carry the page's own host name). Returns why a request is
 * refused, or undefined.
 */
function refusedCaller(req: GatewayRequest, port: number): string | undefined {
  if (!LOOPBACK.test(req.socket?.remoteAddress ?? '')) return 'the gateway answers only this machine'
  const host = (header(req, ':authority') ?? header(req, 'host') ?? '').toLowerCase()
  const allowed = [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]
  if (!allowed.includes(host)) {
    return `the gateway answers only requests to ${allowed.join(', ')} (this one named ${JSON.stringify(host)})`
  }
  return undefined
}

type Gateway = ReturnType<typeof contentGateway>

const run = (gateway: Gateway, req: GatewayRequest, res: GatewayResponse) =>
  void gateway(req, res).catch(() => res.destroy())

/** The gateway on the network port: content requests from this machine, named by a loopback host. */
export const gatewayOnNetwork =
  (gateway: Gateway, port: number): PlainHttp =>
  (req, res) => {
    if (!isContentRequest(req)) return false
    const why = refusedCaller(req, port)
    if (why) answer(res as Response, 403, why)
    else run(gateway, req, res)
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
      run(gateway, req, res)
    }
    return true
  }
