import { Code, ConnectError, createConnectRouter } from '@connectrpc/connect'
import type { UniversalHandler } from '@connectrpc/connect/protocol'
import {
  type ConnectNodeAdapterOptions,
  type connectNodeAdapter,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from '@connectrpc/connect-node'

/**
 * gRPC-web's text mode (`application/grpc-web-text`, PROTOCOL-WEB.md), which Connect does not serve
 * (it answers 415) and Google's grpc-web client needs for server streams. The request body is base64
 * of the binary frames, possibly in several separately padded pieces; it is decoded as it arrives and
 * handed to Connect's own gRPC-web handler as `application/grpc-web+proto`, whose answer is encoded
 * back frame by frame (trailers frame included), so a Download streams and is never held whole. The
 * binary path's limits apply unchanged: Connect bounds each decoded message by `readMaxBytes`.
 */
export function grpcWebTextAdapter(options: ConnectNodeAdapterOptions) {
  const router = createConnectRouter(options)
  options.routes(router)
  const paths = new Map<string, UniversalHandler>(router.handlers.map((h) => [h.requestPath, h]))
  return (...[req, res]: Parameters<ReturnType<typeof connectNodeAdapter>>): boolean => {
    const match = TEXT_CONTENT_TYPE.exec(req.headers['content-type'] ?? '')
    const handler = match && paths.get((req.url ?? '').split('?', 1)[0] ?? '')
    if (!match || !handler) return false
    const binary = universalRequestFromNodeRequest(req, res, undefined, options.contextValues?.(req))
    binary.header.set('content-type', 'application/grpc-web+proto')
    binary.header.delete('content-length')
    binary.body = decodeBase64Stream(binary.body as AsyncIterable<Uint8Array>)
    handler(binary)
      .then((answer) => {
        answer.header?.set('content-type', `application/grpc-web-text${match[1] ?? ''}`)
        const body = answer.body && encodeBase64Stream(answer.body)
        return universalResponseToNodeResponse({ ...answer, body }, res)
      })
      // A caller gone mid-answer is its own problem; the stream is already torn down.
      .catch(() => {})
    return true
  }
}

const TEXT_CONTENT_TYPE = /^application\/grpc-web-text(\+proto)?$/i

async function* encodeBase64Stream(frames: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  for await (const frame of frames) {
    yield Buffer.from(Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength).toString('base64'))
  }
}

const BASE64_SEGMENT = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/**
 * Decodes base64 that may arrive split anywhere and be padded more than once (each piece a client
 * flushed is padded on its own). Holds at most three characters between pieces.
 */
export async function* decodeBase64Stream(text: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  let pending = ''
  for await (const piece of text) {
    pending += Buffer.from(piece)
      .toString('latin1')
      .replace(/[\r\n\t ]/g, '')
    const whole = pending.length - (pending.length % 4)
    if (whole === 0) continue
    const ready = pending.slice(0, whole)
    pending = pending.slice(whole)
    yield decodeSegments(ready)
  }
  if (pending !== '')
    throw new ConnectError(
      'the request body is not whole base64 (application/grpc-web-text)',
      Code.InvalidArgument,
    )
}

/** Whole quartets, each padded run decoded on its own (Node's decoder stops at the first `=`). */
function decodeSegments(quartets: string): Buffer {
  const parts: Buffer[] = []
  for (let start = 0; start < quartets.length; ) {
    const pad = quartets.indexOf('=', start)
    const end = pad === -1 ? quartets.length : Math.min(quartets.length, pad - (pad % 4) + 4)
    const segment = quartets.slice(start, end)
    if (!BASE64_SEGMENT.test(segment))
      throw new ConnectError(
        'the request body is not base64 (application/grpc-web-text)',
        Code.InvalidArgument,
      )
    parts.push(Buffer.from(segment, 'base64'))
    start = end
  }
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts)
}
