import { Code, ConnectError } from '@connectrpc/connect'

/**
 * The few pieces of the gRPC wire format that the Download fast paths speak directly (the rest of
 * PeerService goes through Connect): a message is a 5-byte envelope (flags, big-endian length) then
 * protobuf bytes; the status travels in `grpc-status` / `grpc-message` trailers.
 */
export const DOWNLOAD_PATH = '/peerdir.v1.PeerService/Download'
export const GRPC_CONTENT_TYPE = 'application/grpc+proto'
export const ENVELOPE_BYTES = 5

export const isGrpcContentType = (value: string | undefined) =>
  value === 'application/grpc' || value === 'application/grpc+proto'

export function envelope(payload: Uint8Array): Buffer {
  const framed = Buffer.allocUnsafe(ENVELOPE_BYTES + payload.length)
  framed[0] = 0
  framed.writeUInt32BE(payload.length, 1)
  framed.set(payload, ENVELOPE_BYTES)
  return framed
}

export function varintLength(value: number): number {
  let length = 1
  for (let rest = value; rest >= 0x80; rest = Math.floor(rest / 0x80)) length++
  return length
}

/** Writes `value` (a safe non-negative integer) as a protobuf varint at `at`; returns the next position. */
export function writeVarint(target: Buffer, at: number, value: number): number {
  let rest = value
  let position = at
  while (rest >= 0x80) {
    target[position++] = (rest % 0x80) | 0x80
    rest = Math.floor(rest / 0x80)
  }
  target[position++] = rest
  return position
}

/** The trailers (or trailers-only headers) that end a call with `error` (its metadata too), or with OK. */
export function statusTrailers(error?: ConnectError): Record<string, string> {
  if (!error) return { 'grpc-status': '0' }
  const trailers: Record<string, string> = {}
  error.metadata.forEach((value, key) => {
    trailers[key] = value
  })
  return {
    ...trailers,
    'grpc-status': String(error.code),
    'grpc-message': encodeGrpcMessage(error.rawMessage),
  }
}

/**
 * `grpc-message` as the gRPC spec (PROTOCOL-HTTP2.md) writes it: the UTF-8 bytes, with only those
 * outside 0x20–0x7E and '%' itself percent-encoded. encodeURIComponent escapes far more (':', ';', '/',
 * ...), and grpc-js, which decodes with decodeURI, shows those escapes to its users.
 */
export function encodeGrpcMessage(message: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(message)) return message
  let encoded = ''
  for (const byte of Buffer.from(message, 'utf8')) {
    encoded +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return encoded
}

/** The call's outcome from its trailers: undefined for OK, else the error they carry. */
export function errorFromTrailers(trailers: Record<string, unknown> | undefined): ConnectError | undefined {
  const status = trailers?.['grpc-status']
  if (status === undefined) return new ConnectError('the call ended without a status', Code.Internal)
  const code = Number(status)
  if (code === 0) return undefined
  const raw = trailers?.['grpc-message']
  let message = typeof raw === 'string' ? raw : ''
  try {
    message = decodeURIComponent(message)
  } catch {}
  return new ConnectError(
    message,
    code in Code && code > 0 && code <= 16 ? (code as Code) : Code.Unknown,
    metadataOf(trailers ?? {}),
  )
}

/** The trailers that are no part of the status or HTTP/2 itself, as the error's metadata. */
function metadataOf(trailers: Record<string, unknown>): Headers {
  const metadata = new Headers()
  for (const [key, value] of Object.entries(trailers)) {
    if (key.startsWith(':') || key.startsWith('grpc-') || typeof value !== 'string') continue
    try {
      metadata.set(key, value)
    } catch {
      // a value Headers will not hold is no metadata this side reads
    }
  }
  return metadata
}
