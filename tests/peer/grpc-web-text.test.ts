import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import http2 from 'node:http2'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { create, fromBinary, toBinary } from '@bufbuild/protobuf'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HashCache } from '../../peer/src/content/hash-cache.ts'
import { ShareIndex } from '../../peer/src/content/share-index.ts'
import {
  DownloadRequestSchema,
  DownloadResponseSchema,
  GetInfoResponseSchema,
} from '../../peer/src/gen/peerdir/v1/peer_pb.ts'
import { peerServiceRoutes } from '../../peer/src/serve/peer-service.ts'
import { envelope } from '../../peer/src/wire/grpc-wire.ts'
import { type RpcServer, startRpcServer } from '../../peer/src/wire/transport.ts'
import { servingOptions } from '../support/serving-options.ts'

// gRPC-web's text mode from a raw client that follows PROTOCOL-WEB.md on its own: base64 request
// (here in two separately padded pieces, as a client flushing twice sends it), base64 answer whose
// frames are messages (flag 0) and one trailers frame (flag 0x80).
const content = randomBytes(5 * 1024 * 1024 + 3)
let sha = ''
let server: RpcServer
let url = ''

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'peerdir-web-text-'))
  writeFileSync(join(dir, 'content.bin'), content)
  const index = new ShareIndex(dir, new HashCache(join(dir, '.cache.json')))
  await index.scan()
  sha = index.files[0]?.sha256 ?? ''
  const routes = peerServiceRoutes(servingOptions(index, dir, 'texty'))
  server = await startRpcServer({ interceptors: [], routes, port: 0, host: '127.0.0.1' })
  url = `http://127.0.0.1:${server.port}`
})
afterAll(() => server.stop())

type Answer = { status: number; contentType: string; body: string }

/** The request as base64 text, split after `split` bytes of the frame and each piece padded. */
function textBody(frame: Buffer, split: number): string[] {
  return [frame.subarray(0, split), frame.subarray(split)].map((piece) => piece.toString('base64'))
}

function postHttp1(path: string, pieces: string[]): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/grpc-web-text', accept: 'application/grpc-web-text' },
    })
    req.on('response', (res) => {
      let body = ''
      res.setEncoding('latin1')
      res.on('data', (text: string) => {
        body += text
      })
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), body }),
      )
    })
    req.on('error', reject)
    for (const piece of pieces) req.write(piece)
    req.end()
  })
}

function postHttp2(path: string, pieces: string[]): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url)
    session.on('error', reject)
    const stream = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc-web-text+proto',
    })
    let status = 0
    let contentType = ''
    let body = ''
    stream.on('response', (headers) => {
      status = Number(headers[':status'])
      contentType = String(headers['content-type'])
    })
    stream.setEncoding('latin1')
    stream.on('data', (text: string) => {
      body += text
    })
    stream.on('end', () => {
      session.close()
      resolve({ status, contentType, body })
    })
    stream.on('error', reject)
    for (const piece of pieces) stream.write(piece)
    stream.end()
  })
}

/** Base64 whose padding may end any quartet, not only the last: each padded run decoded on its own. */
function decodeText(body: string): Buffer {
  expect(body.length % 4).toBe(0)
  const runs = body.split(/(?<==)(?=[^=])/)
  for (const run of runs) expect(run.length % 4).toBe(0)
  return Buffer.concat(runs.map((run) => Buffer.from(run, 'base64')))
}

function frames(bytes: Buffer): { messages: Buffer[]; trailers: string } {
  const messages: Buffer[] = []
  let trailers = ''
  for (let at = 0; at < bytes.length; ) {
    const flags = bytes[at] as number
    const length = bytes.readUInt32BE(at + 1)
    const payload = bytes.subarray(at + 5, at + 5 + length)
    if (flags & 0x80) trailers += payload.toString('latin1')
    else messages.push(payload)
    at += 5 + length
  }
  return { messages, trailers }
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

describe.each([
  ['HTTP/1.1', postHttp1, 'application/grpc-web-text'],
  ['HTTP/2', postHttp2, 'application/grpc-web-text+proto'],
])('application/grpc-web-text over %s', (_, post, contentType) => {
  it('answers GetInfo', async () => {
    const answer = await post('/peerdir.v1.PeerService/GetInfo', textBody(envelope(new Uint8Array()), 2))
    expect(answer.status).toBe(200)
    expect(answer.contentType).toBe(contentType)
    const { messages, trailers } = frames(decodeText(answer.body))
    expect(messages).toHaveLength(1)
    expect(fromBinary(GetInfoResponseSchema, messages[0] as Buffer).username).toBe('texty')
    expect(trailers).toMatch(/^grpc-status: ?0\r\n/m)
  })

  it('streams a Download whose bytes are the file', async () => {
    const request = envelope(toBinary(DownloadRequestSchema, create(DownloadRequestSchema, { sha256: sha })))
    const answer = await post('/peerdir.v1.PeerService/Download', textBody(request, 7))
    expect(answer.status).toBe(200)
    expect(answer.contentType).toBe(contentType)
    const { messages, trailers } = frames(decodeText(answer.body))
    expect(messages.length).toBeGreaterThan(1)
    const data = Buffer.concat(messages.map((m) => Buffer.from(fromBinary(DownloadResponseSchema, m).data)))
    expect(data.length).toBe(content.length)
    expect(sha256(data)).toBe(sha256(content))
    expect(trailers).toMatch(/^grpc-status: ?0\r\n/m)
  })

  it('ends a refused call with its code in the trailers frame, and refuses a body that is not base64', async () => {
    const request = envelope(
      toBinary(DownloadRequestSchema, create(DownloadRequestSchema, { sha256: '0'.repeat(64) })),
    )
    const missing = frames(
      decodeText((await post('/peerdir.v1.PeerService/Download', textBody(request, 1))).body),
    )
    expect(missing.messages).toHaveLength(0)
    expect(missing.trailers).toMatch(/^grpc-status: ?5\r\n/m)
    const garbled = await post('/peerdir.v1.PeerService/GetInfo', ['AAAA*AAA'])
    expect(frames(decodeText(garbled.body)).trailers).toMatch(/^grpc-status: ?3\r\n/m)
    // A message larger than the binary path takes is refused from its envelope, before it is read.
    const huge = Buffer.from([0, 0, 0x90, 0, 0, 1, 2, 3])
    const refused = await post('/peerdir.v1.PeerService/GetInfo', [huge.toString('base64')])
    expect(frames(decodeText(refused.body)).trailers).toMatch(/^grpc-status: ?8\r\n/m)
  })
})
