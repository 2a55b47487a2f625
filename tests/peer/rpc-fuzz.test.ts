import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { create } from '@bufbuild/protobuf'
import { Code, ConnectError } from '@connectrpc/connect'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HashCache } from '../../peer/src/content/hash-cache.ts'
import { ShareIndex } from '../../peer/src/content/share-index.ts'
import { UploadHeaderSchema, UploadRequestSchema } from '../../peer/src/gen/peerdir/v1/peer_pb.ts'
import { peerServiceRoutes } from '../../peer/src/serve/peer-service.ts'
import { peerAuth } from '../../peer/src/wire/auth.ts'
import { DirectoryClient } from '../../peer/src/wire/directory-client.ts'
import { peerClient } from '../../peer/src/wire/peer-client.ts'
import { type RpcServer, startRpcServer } from '../../peer/src/wire/transport.ts'
import { type DirectoryProcess, startDirectoryProcess } from '../support/directory-process.ts'

// The real PeerService on a real port, hammered with arbitrary requests and malformed upload streams.
let server: RpcServer
let client: ReturnType<typeof peerClient>
let shared: string
let sha: string
const content = randomBytes(2 * 1024 * 1024 + 3)
const UPLOAD_LIMIT = 64 * 1024
const EXPECTED_CODES = new Set([
  Code.InvalidArgument,
  Code.NotFound,
  Code.OutOfRange,
  Code.DataLoss,
  Code.ResourceExhausted,
  Code.FailedPrecondition,
])

beforeAll(async () => {
  shared = mkdtempSync(join(tmpdir(), 'peerdir-fuzz-'))
  writeFileSync(join(shared, 'target.bin'), content)
  const index = new ShareIndex(shared, new HashCache(join(shared, '.cache.json')))
  await index.scan()
  sha = index.files[0]?.sha256 ?? ''
  server = await startRpcServer({
    port: 0,
    host: '127.0.0.1',
    interceptors: [],
    routes: peerServiceRoutes({
      index,
      username: () => 'fuzz-target',
      acceptUploads: true,
      inboxDir: join(shared, 'inbox'),
      maxUploadBytes: UPLOAD_LIMIT,
      inboxQuotaBytes: 64 * UPLOAD_LIMIT,
      onStale: () => {},
      onUploaded: () => {},
    }),
  })
  client = peerClient(`http://127.0.0.1:${server.port}`)
})
afterAll(() => server.stop())

const hex64 = fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 })

async function outcome(call: () => Promise<unknown>): Promise<'ok' | Code> {
  try {
    await call()
    return 'ok'
  } catch (err) {
    return ConnectError.from(err).code
  }
}

const inboxFiles = () => {
  try {
    return readdirSync(join(shared, 'inbox'))
  } catch {
    return []
  }
}

describe('PeerService under arbitrary input', () => {
  it('answers any download request with data inside the file or a clear code', async () => {
    const size = BigInt(content.length)
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.constant(sha), fc.string({ maxLength: 80 }), hex64),
        fc.bigInt({ min: 0n, max: size + 10n }),
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        async (target, offset, length) => {
          let received = 0
          const result = await outcome(async () => {
            for await (const part of client.download({ sha256: target, offset, length })) {
              const at = Number(part.offset)
              expect(content.subarray(at, at + part.data.length).equals(Buffer.from(part.data))).toBe(true)
              received += part.data.length
            }
          })
          if (result === 'ok') {
            expect(target).toBe(sha)
            expect(BigInt(received)).toBe(length === 0n ? size - offset : length)
          } else {
            expect(EXPECTED_CODES.has(result), `unexpected code ${Code[result]}`).toBe(true)
          }
        },
      ),
      { numRuns: 150 },
    )
  })

  it('refuses truncated, oversized, out-of-order and lying upload streams and keeps nothing', async () => {
    const part = fc.oneof(
      fc.record({
        kind: fc.constant('header' as const),
        name: fc.string({ maxLength: 40 }),
        size: fc.nat(UPLOAD_LIMIT * 2),
        sha: hex64,
      }),
      fc.record({ kind: fc.constant('data' as const), bytes: fc.uint8Array({ maxLength: 4096 }) }),
    )
    await fc.assert(
      fc.asyncProperty(fc.array(part, { maxLength: 6 }), async (parts) => {
        async function* stream() {
          for (const p of parts) {
            yield p.kind === 'header'
              ? create(UploadRequestSchema, {
                  part: {
                    case: 'header',
                    value: create(UploadHeaderSchema, { name: p.name, size: BigInt(p.size), sha256: p.sha }),
                  },
                })
              : create(UploadRequestSchema, { part: { case: 'data', value: p.bytes } })
          }
        }
        const result = await outcome(() => client.upload(stream()))
        // A random sha256 never matches random bytes, so nothing may ever be kept.
        expect(result).not.toBe('ok')
        expect(EXPECTED_CODES.has(result as Code), `unexpected code ${Code[result as Code]}`).toBe(true)
        expect(inboxFiles()).toEqual([])
      }),
      { numRuns: 150 },
    )
  })
})

describe('the caller check under arbitrary credentials', () => {
  let directory: DirectoryProcess
  let verify: (header: string | null) => Promise<string>
  /** A caller's call token for this peer ('me'): the one credential it must take. */
  let good: string
  let others: string[]
  const post = async (path: string, json: unknown, token?: string) => {
    const response = await fetch(`${directory.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(json),
    })
    expect(response.status).toBe(200)
    return ((await response.json()) as { token: string }).token
  }
  const login = (username: string) =>
    post('/v1/login', { username, password: 'fuzz password', url: 'http://127.0.0.1:9' })

  beforeAll(async () => {
    directory = await startDirectoryProcess()
    const mine = await login('me')
    await login('other')
    const caller = await login('caller')
    good = await post('/v1/call-tokens', { audience: 'me' }, caller)
    const forOther = await post('/v1/call-tokens', { audience: 'other' }, caller)
    // Another peer's token with its payload rewritten to name this peer, the signature left as it was.
    const [header, payload, signature] = forOther.split('.') as [string, string, string]
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString())
    const readdressed = Buffer.from(JSON.stringify({ ...claims, aud: 'me' })).toString('base64url')
    others = [caller, mine, forOther, `${header}.${readdressed}.${signature}`, `${good}.`, `${good}x`]
    verify = peerAuth({
      directory: new DirectoryClient(directory.url),
      open: false,
      username: 'me',
      sessionToken: () => mine,
    })
  })
  afterAll(() => directory?.stop('SIGKILL'))

  /** The same bytes in every segment: base64url's spare bits may differ and still name one token. */
  const sameToken = (token: string) => {
    const a = token.split('.')
    const b = good.split('.')
    return (
      a.length === b.length &&
      a.every((s, i) => Buffer.from(s, 'base64url').equals(Buffer.from(b[i] ?? '', 'base64url')))
    )
  }

  it('takes only an intact call token for itself; anything else is Unauthenticated', async () => {
    const token = fc.oneof(
      fc.constant('good'),
      fc.nat({ max: 5 }).map((i) => `other:${i}`),
      fc.tuple(fc.nat(), fc.constantFrom(...'AQgw_-.0=+/ ')).map(([at, c]) => `mutated:${at}:${c}`),
      fc.string({ maxLength: 300 }).map((s) => `raw:${s}`),
    )
    const text = (choice: string) => {
      const [kind, a = '', c = ''] = choice.split(':')
      if (kind === 'good') return good
      if (kind === 'other') return others[Number(a)] as string
      if (kind === 'mutated') {
        const i = Number(a) % good.length
        return good.slice(0, i) + c + good.slice(i + 1)
      }
      return choice.slice(4)
    }
    await fc.assert(
      fc.asyncProperty(
        token,
        fc.constantFrom('Bearer ', 'bearer ', 'Bearer\t', '', 'Basic '),
        async (choice, scheme) => {
          const presented = text(choice)
          const result = await verify(`${scheme}${presented}`).then(
            (username) => username,
            (err: unknown) => ConnectError.from(err).code,
          )
          if (presented === good && scheme !== '' && scheme !== 'Basic ') expect(result).toBe('caller')
          else if (!(sameToken(presented) && scheme !== '' && scheme !== 'Basic '))
            expect(result).toBe(Code.Unauthenticated)
        },
      ),
      { numRuns: 400 },
    )
  })
})
