import { mkdtempSync, utimesSync, writeFileSync } from 'node:fs'
import http2 from 'node:http2'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { create, toBinary } from '@bufbuild/protobuf'
import { ConnectError } from '@connectrpc/connect'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HashCache } from '../../peer/src/content/hash-cache.ts'
import { ShareIndex } from '../../peer/src/content/share-index.ts'
import { DownloadRequestSchema } from '../../peer/src/gen/peerdir/v1/peer_pb.ts'
import { downloadFastPath } from '../../peer/src/serve/download-fast-path.ts'
import { peerServiceRoutes } from '../../peer/src/serve/peer-service.ts'
import { peerAuth } from '../../peer/src/wire/auth.ts'
import { DirectoryClient } from '../../peer/src/wire/directory-client.ts'
import { DOWNLOAD_PATH, encodeGrpcMessage, envelope } from '../../peer/src/wire/grpc-wire.ts'
import { peerClient } from '../../peer/src/wire/peer-client.ts'
import { type RpcServer, type ServerOptions, startRpcServer } from '../../peer/src/wire/transport.ts'
import { servingOptions } from '../support/serving-options.ts'

// Found in review (issue 14): the Download fast path wrote `grpc-message` with encodeURIComponent, and
// grpc-js, which decodes it with decodeURI as the gRPC spec allows, showed `authorization%3A Bearer`.
// Here the fast path's refusals are read by both client stacks, Connect's and grpc-js, and must read
// the same, unescaped.
const NAME = 'café – 100% ünïcode; täst.bin'
const servers: RpcServer[] = []
let sha = ''
/** Refuses callers without a valid call token (the real check, its directory never reached). */
let guarded = ''
/** Serves anyone (--open), so a request gets as far as the file. */
let open = ''

async function listen(options: ServerOptions): Promise<string> {
  const server = await startRpcServer({ ...options, port: 0, host: '127.0.0.1' })
  servers.push(server)
  return `127.0.0.1:${server.port}`
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'peerdir-grpc-message-'))
  writeFileSync(join(dir, NAME), 'a file whose name is not ASCII\n')
  const index = new ShareIndex(dir, new HashCache(join(dir, '.cache.json')))
  await index.scan()
  sha = index.files[0]?.sha256 ?? ''
  // Touched after hashing and never rescanned: every Download of it is refused with its name.
  utimesSync(join(dir, NAME), new Date(), new Date(Date.now() + 60_000))
  const service = servingOptions(index, dir, 'alice')
  // Port 9 (discard): nothing answers there; these calls are decided before the directory is asked.
  const directory = new DirectoryClient('http://127.0.0.1:9')
  const serve = (isOpen: boolean) => {
    const verifyPeer = peerAuth({ directory, open: isOpen, username: 'alice', sessionToken: () => undefined })
    return listen({
      interceptors: [],
      routes: peerServiceRoutes(service),
      fastPath: downloadFastPath({ service, verifyPeer }),
    })
  }
  guarded = await serve(false)
  open = await serve(true)
})
afterAll(() => Promise.all(servers.map((server) => server.stop())))

type Case = { address: () => string; authorization?: string; message: string }
const cases: Record<string, Case> = {
  'no token': {
    address: () => guarded,
    message: 'present a call token for alice as "authorization: Bearer <token>"',
  },
  'a token that is no JWT': {
    address: () => guarded,
    authorization: 'Bearer not-a-jwt',
    message: 'the token is not valid for this network; ask the directory for a new call token',
  },
  'a file that changed, its name not ASCII': {
    address: () => open,
    message: `${NAME} changed or vanished on this peer; ask another source`,
  },
}

const request = () => ({ sha256: sha, offset: 0n, length: 0n })

async function viaConnect({ address, authorization }: Case): Promise<string> {
  const headers = authorization ? { authorization } : undefined
  try {
    for await (const _ of peerClient(`http://${address()}`).download(request(), { headers })) return 'served'
    return 'served'
  } catch (err) {
    return ConnectError.from(err).rawMessage
  }
}

const grpcJsPeerService = () => {
  const definition = protoLoader.loadSync(join(import.meta.dirname, '../../proto/peerdir/v1/peer.proto'), {
    longs: String,
    defaults: true,
  })
  // grpc-js builds its clients from the loaded descriptor at run time: no static type to name.
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    peerdir: { v1: { PeerService: grpc.ServiceClientConstructor } }
  }
  return loaded.peerdir.v1.PeerService
}

async function viaGrpcJs({ address, authorization }: Case): Promise<string> {
  const PeerService = grpcJsPeerService()
  const client = new PeerService(address(), grpc.credentials.createInsecure())
  const metadata = new grpc.Metadata()
  if (authorization) metadata.set('authorization', authorization)
  try {
    return await new Promise<string>((resolve) => {
      const call = client.download({ sha256: sha, offset: '0', length: '0' }, metadata)
      call.on('data', () => {})
      call.on('error', (err: grpc.ServiceError) => resolve(err.details))
      call.on('end', () => resolve('served'))
    })
  } finally {
    client.close()
  }
}

/** The `grpc-message` exactly as it crosses the wire. */
async function wireMessage({ address, authorization }: Case): Promise<string | undefined> {
  const session = http2.connect(`http://${address()}`)
  try {
    return await new Promise((resolve, reject) => {
      const stream = session.request({
        ':method': 'POST',
        ':path': DOWNLOAD_PATH,
        'content-type': 'application/grpc+proto',
        te: 'trailers',
        ...(authorization ? { authorization } : {}),
      })
      let message: string | undefined
      const take = (headers: http2.IncomingHttpHeaders) => {
        const value = headers['grpc-message']
        if (typeof value === 'string') message = value
      }
      stream.on('response', take)
      stream.on('trailers', take)
      stream.on('data', () => {})
      stream.on('end', () => resolve(message))
      stream.on('error', reject)
      stream.end(envelope(toBinary(DownloadRequestSchema, create(DownloadRequestSchema, request()))))
    })
  } finally {
    session.close()
  }
}

describe('grpc-message from the Download fast path', () => {
  it.each(Object.entries(cases))('reads the same, unescaped, in grpc-js and Connect: %s', async (_, call) => {
    expect(await viaConnect(call)).toBe(call.message)
    expect(await viaGrpcJs(call)).toBe(call.message)
  })

  it('escapes only what the gRPC spec requires on the wire', async () => {
    const changed = cases['a file that changed, its name not ASCII'] as Case
    expect(await wireMessage(changed)).toBe(
      'caf%C3%A9 %E2%80%93 100%25 %C3%BCn%C3%AFcode; t%C3%A4st.bin changed or vanished on this peer; ask another source',
    )
    expect(await wireMessage(cases['no token'] as Case)).toBe(
      'present a call token for alice as "authorization: Bearer <token>"',
    )
  })

  it('encodes any text as printable ASCII that decodes back to it, leaving printable ASCII but % as is', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (text) => {
        const encoded = encodeGrpcMessage(text)
        expect(encoded).toMatch(/^[\x20-\x7e]*$/)
        expect(decodeURIComponent(encoded)).toBe(text)
        // grpc-js decodes with decodeURI, which leaves escapes of reserved characters alone: none are made.
        expect(decodeURI(encoded)).toBe(text)
      }),
    )
    fc.assert(
      fc.property(fc.stringMatching(/^[\x20-\x24\x26-\x7e]*$/), (printable) => {
        expect(encodeGrpcMessage(printable)).toBe(printable)
      }),
    )
  })
})
