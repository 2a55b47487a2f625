import { randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import http2 from 'node:http2'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { create, fromBinary, toBinary } from '@bufbuild/protobuf'
import { Code, ConnectError } from '@connectrpc/connect'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HashCache } from '../../peer/src/content/hash-cache.ts'
import { ShareIndex } from '../../peer/src/content/share-index.ts'
import { DownloadRequestSchema, DownloadResponseSchema } from '../../peer/src/gen/peerdir/v1/peer_pb.ts'
import { downloadFastPath } from '../../peer/src/serve/download-fast-path.ts'
import { peerServiceRoutes } from '../../peer/src/serve/peer-service.ts'
import { DOWNLOAD_PATH } from '../../peer/src/wire/grpc-wire.ts'
import { peerClient } from '../../peer/src/wire/peer-client.ts'
import { type RpcServer, type ServerOptions, startRpcServer } from '../../peer/src/wire/transport.ts'
import { until } from '../support/peer-process.ts'
import { servingOptions } from '../support/serving-options.ts'

// The hand-framed gRPC Download (download-fast-path.ts) next to Connect's own handler for the same
// PeerService: any request gets the same bytes or the same code from both.
const content = randomBytes(3 * 1024 * 1024 + 17)
let sha = ''
const servers: RpcServer[] = []
let plain: ReturnType<typeof peerClient>
let fast: ReturnType<typeof peerClient>
let fastUrl = ''

async function listen(options: ServerOptions): Promise<string> {
  const server = await startRpcServer({ ...options, port: 0, host: '127.0.0.1' })
  servers.push(server)
  return `http://127.0.0.1:${server.port}`
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'peerdir-fast-path-'))
  writeFileSync(join(dir, 'content.bin'), content)
  const index = new ShareIndex(dir, new HashCache(join(dir, '.cache.json')))
  await index.scan()
  sha = index.files[0]?.sha256 ?? ''
  const service = servingOptions(index, dir, 'fast')
  const verifyPeer = async (authorization: string | null) => {
    if (authorization !== 'Bearer good')
      throw new ConnectError('present your directory token', Code.Unauthenticated)
    return 'caller'
  }
  plain = peerClient(await listen({ interceptors: [], routes: peerServiceRoutes(service) }))
  fastUrl = await listen({
    interceptors: [],
    routes: peerServiceRoutes(service),
    fastPath: downloadFastPath({ service, verifyPeer }),
  })
  fast = peerClient(fastUrl)
})
afterAll(() => Promise.all(servers.map((server) => server.stop())))

const auth = { headers: { authorization: 'Bearer good' } }

async function fetchAll(
  client: ReturnType<typeof peerClient>,
  request: { sha256: string; offset: bigint; length: bigint },
): Promise<Buffer | Code> {
  const parts: Buffer[] = []
  try {
    for await (const part of client.download(request, auth)) parts.push(Buffer.from(part.data))
    return Buffer.concat(parts)
  } catch (err) {
    return ConnectError.from(err).code
  }
}

/** A Download call on a raw HTTP/2 session, body not yet sent. */
const downloadCall = (session: http2.ClientHttp2Session, headers: Record<string, string> = {}) =>
  session.request({
    ':method': 'POST',
    ':path': DOWNLOAD_PATH,
    'content-type': 'application/grpc+proto',
    te: 'trailers',
    authorization: 'Bearer good',
    ...headers,
  })

/** A raw HTTP/2 call to the Download path with any body; the grpc-status it ends with. */
async function rawCall(body: Buffer, headers: Record<string, string> = {}): Promise<number> {
  const session = http2.connect(fastUrl)
  try {
    return await new Promise<number>((resolve, reject) => {
      const stream = downloadCall(session, headers)
      let status: number | undefined
      stream.on('response', (h) => {
        if (h['grpc-status'] !== undefined) status = Number(h['grpc-status'])
      })
      stream.on('trailers', (h) => {
        status = Number(h['grpc-status'])
      })
      stream.on('data', () => {})
      stream.on('end', () => (status === undefined ? reject(new Error('no grpc-status')) : resolve(status)))
      stream.on('error', reject)
      stream.end(body)
    })
  } finally {
    session.close()
  }
}

const framed = (payload: Buffer, flags = 0) => {
  const head = Buffer.alloc(5)
  head[0] = flags
  head.writeUInt32BE(payload.length, 1)
  return Buffer.concat([head, payload])
}

describe('Download over the fast path', () => {
  it('answers every request exactly as Connect’s handler does', async () => {
    const size = BigInt(content.length)
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.constant(sha), fc.constant(sha), fc.string({ maxLength: 70 })),
        fc.bigInt({ min: 0n, max: size + 3n }),
        fc.oneof(fc.bigInt({ min: 0n, max: size + 3n }), fc.constant(0n)),
        async (sha256, offset, length) => {
          const request = { sha256, offset, length }
          const [viaConnect, viaFastPath] = await Promise.all([
            fetchAll(plain, request),
            fetchAll(fast, request),
          ])
          if (Buffer.isBuffer(viaConnect) && Buffer.isBuffer(viaFastPath)) {
            expect(viaFastPath.equals(viaConnect)).toBe(true)
            const end = length === 0n ? content.length : Number(offset + length)
            expect(viaFastPath.equals(content.subarray(Number(offset), end))).toBe(true)
          } else {
            expect(viaFastPath).toBe(viaConnect)
          }
        },
      ),
      { numRuns: 60 },
    )
  })

  it('keeps many concurrent streams on one connection byte-exact (its read buffers are recycled)', async () => {
    const pieces = Array.from({ length: 24 }, (_, i) => ({
      offset: (i * 131_071) % (content.length - 1_000_000),
      length: 1_000_000 + i,
    }))
    const results = await Promise.all(
      pieces.map(({ offset, length }) =>
        fetchAll(fast, { sha256: sha, offset: BigInt(offset), length: BigInt(length) }),
      ),
    )
    results.forEach((result, i) => {
      const { offset, length } = pieces[i] as { offset: number; length: number }
      expect(Buffer.isBuffer(result) && result.equals(content.subarray(offset, offset + length))).toBe(true)
    })
  })

  it('keeps bytes exact when a slow reader leaves them queued (its read buffers are recycled)', async () => {
    // Node's default 64 KiB windows and a paused reader: the server's writes wait in its queue while
    // it reads on, so a buffer handed back before the socket took its bytes would corrupt them.
    const session = http2.connect(fastUrl)
    try {
      const request = create(DownloadRequestSchema, { sha256: sha })
      const stream = downloadCall(session)
      stream.end(framed(Buffer.from(toBinary(DownloadRequestSchema, request))))
      stream.pause()
      // Wait until the stream's flow-control window is full: from then on the server's writes queue.
      await until(async () => stream.readableLength >= 65_535, 'the client window to fill', 10_000)
      const body: Buffer[] = []
      for await (const part of stream) body.push(part as Buffer)
      const bytes = Buffer.concat(body)
      const received: Buffer[] = []
      for (let at = 0; at < bytes.length; ) {
        const length = bytes.readUInt32BE(at + 1)
        received.push(
          Buffer.from(fromBinary(DownloadResponseSchema, bytes.subarray(at + 5, at + 5 + length)).data),
        )
        at += 5 + length
      }
      expect(Buffer.concat(received).equals(content)).toBe(true)
    } finally {
      session.close()
    }
  })

  it('refuses callers without a valid token, as the interceptor does', async () => {
    const refused = async (headers?: Record<string, string>) => {
      try {
        for await (const _ of fast.download({ sha256: sha, offset: 0n, length: 1n }, { headers }))
          return 'served'
        return 'served'
      } catch (err) {
        return ConnectError.from(err).code
      }
    }
    expect(await refused()).toBe(Code.Unauthenticated)
    expect(await refused({ authorization: 'Bearer bad' })).toBe(Code.Unauthenticated)
    expect(await refused(auth.headers)).toBe('served')
  })

  it('answers malformed calls with a clear code and keeps serving', async () => {
    expect(await rawCall(Buffer.alloc(0))).toBe(Code.InvalidArgument)
    expect(await rawCall(Buffer.from([0, 0, 0]))).toBe(Code.InvalidArgument)
    expect(await rawCall(framed(Buffer.from([0xff, 0xff, 0xff])))).toBe(Code.InvalidArgument)
    expect(await rawCall(Buffer.concat([framed(Buffer.alloc(0)), framed(Buffer.alloc(0))]))).toBe(
      Code.InvalidArgument,
    )
    expect(await rawCall(framed(Buffer.alloc(0), 1))).toBe(Code.Unimplemented)
    expect(await rawCall(framed(randomBytes(10_000)))).toBe(Code.ResourceExhausted)
    const valid = framed(
      Buffer.from(toBinary(DownloadRequestSchema, create(DownloadRequestSchema, { sha256: sha }))),
    )
    expect(await rawCall(valid, { authorization: 'Bearer bad' })).toBe(Code.Unauthenticated)
    expect(await rawCall(valid)).toBe(0)
    // An empty request names no content: its sha256 is not a hash at all.
    expect(await rawCall(framed(Buffer.alloc(0)))).toBe(Code.InvalidArgument)
    const whole = await fetchAll(fast, { sha256: sha, offset: 0n, length: 0n })
    expect(Buffer.isBuffer(whole) && whole.equals(content)).toBe(true)
  })
})
