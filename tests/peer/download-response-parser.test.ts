import { randomBytes } from 'node:crypto'
import { create, toBinary } from '@bufbuild/protobuf'
import { Code, ConnectError } from '@connectrpc/connect'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DownloadResponseSchema } from '../../peer/src/gen/peerdir/v1/peer_pb.ts'
import { ResponseParser } from '../../peer/src/wire/download-response-parser.ts'
import { envelope } from '../../peer/src/wire/grpc-wire.ts'

// The downloader's gRPC reader: messages as protobuf-es encodes them (what Connect's handler sends),
// split anywhere by the network, give back exactly their bytes; anything else is a DataLoss.

const message = (offset: number, data: Uint8Array) =>
  envelope(toBinary(DownloadResponseSchema, create(DownloadResponseSchema, { offset: BigInt(offset), data })))

/** Feeds `stream` in pieces cut at `cuts`; returns the bytes handed out, or the error code. */
function parse(stream: Buffer, start: number, cuts: number[] = []): Buffer | Code {
  const parser = new ResponseParser(start)
  const out: Buffer[] = []
  const points = [...new Set(cuts.map((cut) => cut % (stream.length + 1)))].sort((a, b) => a - b)
  try {
    let from = 0
    for (const to of [...points, stream.length]) {
      const slices: Buffer[] = []
      parser.feed(stream.subarray(from, to), slices)
      for (const slice of slices) out.push(Buffer.from(slice))
      from = to
    }
    parser.end()
    return Buffer.concat(out)
  } catch (err) {
    return ConnectError.from(err).code
  }
}

describe('the Download response parser', () => {
  it('gives back exactly the bytes of any messages, however the stream is split', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 2 ** 40 }),
        fc.array(fc.uint8Array({ maxLength: 3000 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (start, pieces, cuts) => {
          let offset = start
          const stream = Buffer.concat(
            pieces.map((data) => {
              const framed = message(offset, data)
              offset += data.length
              return framed
            }),
          )
          const parsed = parse(stream, start, cuts)
          expect(parsed).toEqual(Buffer.concat(pieces.map((p) => Buffer.from(p))))
        },
      ),
      { numRuns: 300 },
    )
  })

  it('accepts fields in any order and skips unknown ones, as protobuf allows', () => {
    const data = randomBytes(100)
    // field 2 (data) first, then an unknown varint field 7, then field 1 (offset = 5)
    const payload = Buffer.concat([Buffer.from([0x12, 100]), data, Buffer.from([0x38, 0x2a, 0x08, 0x05])])
    expect(parse(envelope(payload), 5, [3, 50])).toEqual(data)
  })

  it('refuses bytes that do not belong where the call asked', () => {
    const data = randomBytes(64)
    expect(parse(message(7, data), 0)).toBe(Code.DataLoss) // wrong offset
    expect(parse(Buffer.concat([message(0, data), message(0, data)]), 0)).toBe(Code.DataLoss) // repeated
    expect(parse(message(0, data).subarray(0, 40), 0)).toBe(Code.DataLoss) // cut mid-message
    const framed = message(0, data)
    framed.writeUInt32BE(framed.readUInt32BE(1) - 10, 1)
    expect(parse(framed, 0)).toBe(Code.DataLoss) // envelope shorter than its fields
    const huge = Buffer.from([0, 0x7f, 0xff, 0xff, 0xff])
    expect(parse(huge, 0)).toBe(Code.DataLoss) // a 2 GiB message
    expect(parse(envelope(Buffer.from([0x0b])), 0)).toBe(Code.DataLoss) // wire type 3
    const compressed = message(0, data)
    compressed[0] = 1
    expect(parse(compressed, 0)).toBe(Code.Internal)
  })
})
