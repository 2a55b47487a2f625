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

/** The trailers (or trailers-only headers) that end a call with `error`, or with OK. */
export function statusTrailers(error?: ConnectError): Record<string, string> {
  if (!error) return { 'grpc-status': '0' }
  return { 'grpc-status': String(error.code), 'grpc-message': encodeURIComponent(error.rawMessage) }
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
  return new ConnectError(message, code in Code && code > 0 && code <= 16 ? (code as Code) : Code.Unknown)
}
