/** HTTP/2's framing (RFC 9113 §4, §6): what the download session reads and writes. */

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')
export const FRAME_HEADER_BYTES = 9

export const FrameType = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const

export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const

export const Setting = {
  HEADER_TABLE_SIZE: 1,
  ENABLE_PUSH: 2,
  MAX_CONCURRENT_STREAMS: 3,
  INITIAL_WINDOW_SIZE: 4,
  MAX_FRAME_SIZE: 5,
  MAX_HEADER_LIST_SIZE: 6,
} as const

export const ErrorCode = {
  NO_ERROR: 0,
  PROTOCOL_ERROR: 1,
  INTERNAL_ERROR: 2,
  FLOW_CONTROL_ERROR: 3,
  FRAME_SIZE_ERROR: 6,
  REFUSED_STREAM: 7,
  CANCEL: 8,
  COMPRESSION_ERROR: 9,
  ENHANCE_YOUR_CALM: 11,
} as const

/** Both ends' windows start here, until SETTINGS and WINDOW_UPDATE say otherwise. */
export const DEFAULT_WINDOW = 65_535
export const MAX_WINDOW = 2 ** 31 - 1
/** The frame size every endpoint accepts, and the most any may advertise. */
export const DEFAULT_FRAME_BYTES = 16_384
export const MAX_FRAME_SIZE_SETTING = 2 ** 24 - 1

export type FrameHeader = { length: number; type: number; flags: number; stream: number }

export function readFrameHeader(head: Buffer): FrameHeader {
  return {
    length: head.readUIntBE(0, 3),
    type: head[3] as number,
    flags: head[4] as number,
    stream: head.readUInt32BE(5) & 0x7fffffff,
  }
}

export function frame(
  type: number,
  flags: number,
  stream: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length)
  out.writeUIntBE(payload.length, 0, 3)
  out[3] = type
  out[4] = flags
  out.writeUInt32BE(stream, 5)
  payload.copy(out, FRAME_HEADER_BYTES)
  return out
}

export function settingsFrame(settings: Array<[number, number]>): Buffer {
  const payload = Buffer.allocUnsafe(settings.length * 6)
  settings.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6)
    payload.writeUInt32BE(value, i * 6 + 2)
  })
  return frame(FrameType.SETTINGS, 0, 0, payload)
}

export function windowUpdateFrame(stream: number, increment: number): Buffer {
  const payload = Buffer.allocUnsafe(4)
  payload.writeUInt32BE(increment, 0)
  return frame(FrameType.WINDOW_UPDATE, 0, stream, payload)
}

export function rstStreamFrame(stream: number, code: number): Buffer {
  const payload = Buffer.allocUnsafe(4)
  payload.writeUInt32BE(code, 0)
  return frame(FrameType.RST_STREAM, 0, stream, payload)
}

export function goawayFrame(lastStream: number, code: number): Buffer {
  const payload = Buffer.allocUnsafe(8)
  payload.writeUInt32BE(lastStream, 0)
  payload.writeUInt32BE(code, 4)
  return frame(FrameType.GOAWAY, 0, 0, payload)
}

/** An error code's name, for the message a failed call carries. */
export function errorCodeName(code: number): string {
  const name = Object.entries(ErrorCode).find(([, value]) => value === code)?.[0]
  return name ?? `error ${code}`
}

/** The connection is lost for a violation: its calls fail, and it says why in its GOAWAY. */
export class H2ProtocolError extends Error {
  override readonly name = 'H2ProtocolError'
  readonly code: number
  constructor(why: string, code: number) {
    super(`HTTP/2 ${errorCodeName(code)}: the source ${why}`)
    this.code = code
  }
}

export const protocolError = (why: string, code: number = ErrorCode.PROTOCOL_ERROR) =>
  new H2ProtocolError(why, code)
