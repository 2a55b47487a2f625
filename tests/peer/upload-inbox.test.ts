import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { create } from '@bufbuild/protobuf'
import { Code, ConnectError } from '@connectrpc/connect'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HashCache } from '../../peer/src/content/hash-cache.ts'
import { ShareIndex } from '../../peer/src/content/share-index.ts'
import {
  UploadHeaderSchema,
  type UploadRequest,
  UploadRequestSchema,
} from '../../peer/src/gen/peerdir/v1/peer_pb.ts'
import { peerServiceRoutes } from '../../peer/src/serve/peer-service.ts'
import { peerClient } from '../../peer/src/wire/peer-client.ts'
import { type RpcServer, startRpcServer } from '../../peer/src/wire/transport.ts'
import { until } from '../support/peer-process.ts'

// PeerService.Upload against the inbox's quota (uploads in flight count) and the bytes it already has.
const QUOTA = 3 * 1024 * 1024
let server: RpcServer
let client: ReturnType<typeof peerClient>
let inbox = ''

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'peerdir-inbox-'))
  inbox = join(dir, 'inbox')
  const index = new ShareIndex(dir, new HashCache(join(dir, '.cache.json')))
  await index.scan()
  const routes = peerServiceRoutes({
    index,
    username: () => 'bob',
    acceptUploads: true,
    inboxDir: inbox,
    maxUploadBytes: QUOTA,
    inboxQuotaBytes: QUOTA,
    onStale: () => {},
    onUploaded: (file) => index.addVerified(file),
  })
  server = await startRpcServer({ interceptors: [], routes, port: 0, host: '127.0.0.1' })
  client = peerClient(`http://127.0.0.1:${server.port}`)
})
afterAll(() => server.stop())

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

/** An upload stream: the header, then the bytes in pieces, pausing before the last until `hold` resolves. */
async function* uploadOf(name: string, bytes: Buffer, hold?: Promise<void>): AsyncIterable<UploadRequest> {
  const header = create(UploadHeaderSchema, { name, size: BigInt(bytes.length), sha256: sha256(bytes) })
  yield create(UploadRequestSchema, { part: { case: 'header', value: header } })
  const half = bytes.length >> 1
  yield create(UploadRequestSchema, { part: { case: 'data', value: bytes.subarray(0, half) } })
  await hold
  yield create(UploadRequestSchema, { part: { case: 'data', value: bytes.subarray(half) } })
}

const codeOf = (promise: Promise<unknown>) =>
  promise.then(
    () => 'ok',
    (err) => Code[ConnectError.from(err).code],
  )

const inboxNames = () => readdirSync(inbox).sort()

describe('uploads and the inbox quota', () => {
  const first = randomBytes(2 * 1024 * 1024)

  it('keeps an upload within the quota and refuses one that would pass it, storing nothing', async () => {
    const kept = await client.upload(uploadOf('first.bin', first))
    expect(kept.name).toBe('first.bin')
    const over = randomBytes(1024 * 1024 + 1)
    expect(await codeOf(client.upload(uploadOf('over.bin', over)))).toBe('ResourceExhausted')
    expect(inboxNames()).toEqual(['first.bin'])
  })

  it('answers bytes it already has with their name at once, reading and writing none of them', async () => {
    let release = () => {}
    const never = new Promise<void>((resolve) => {
      release = resolve
    })
    // The stream stops before its last piece: an answer can only come without reading it all.
    const again = await client.upload(uploadOf('again.bin', first, never))
    release()
    expect(again).toMatchObject({ name: 'first.bin', sha256: sha256(first) })
    expect(inboxNames()).toEqual(['first.bin'])
  })

  it('counts an upload in flight: a second that would pass the quota with it is refused', async () => {
    let release = () => {}
    const hold = new Promise<void>((resolve) => {
      release = resolve
    })
    const inFlightBytes = randomBytes(600 * 1024)
    const inFlight = client.upload(uploadOf('in-flight.bin', inFlightBytes, hold))
    await until(async () => inboxNames().some((name) => name.startsWith('.upload-')), 'the upload to start')
    expect(await codeOf(client.upload(uploadOf('second.bin', randomBytes(600 * 1024))))).toBe(
      'ResourceExhausted',
    )
    release()
    expect((await inFlight).name).toBe('in-flight.bin')
    expect(inboxNames()).toEqual(['first.bin', 'in-flight.bin'])
  })

  it('takes one copy of the same bytes at a time: a twin sent meanwhile is refused', async () => {
    let release = () => {}
    const hold = new Promise<void>((resolve) => {
      release = resolve
    })
    const bytes = randomBytes(100 * 1024)
    const one = client.upload(uploadOf('twin.bin', bytes, hold))
    await until(async () => inboxNames().some((name) => name.startsWith('.upload-')), 'the upload to start')
    expect(await codeOf(client.upload(uploadOf('twin-again.bin', bytes)))).toBe('AlreadyExists')
    release()
    expect((await one).name).toBe('twin.bin')
    expect(inboxNames()).toEqual(['first.bin', 'in-flight.bin', 'twin.bin'])
  })

  it('stores bytes again when the file that had them changed on disk', async () => {
    const bytes = randomBytes(50 * 1024)
    expect((await client.upload(uploadOf('note.txt', bytes))).name).toBe('note.txt')
    // Edited after it was indexed: the index still names it for these bytes, the disk does not.
    writeFileSync(join(inbox, 'note.txt'), 'edited since')
    const again = await client.upload(uploadOf('note.txt', bytes))
    expect(again.name).toBe('note (1).txt')
    expect(readFileSync(join(inbox, 'note (1).txt')).equals(bytes)).toBe(true)
  })
})

/** A PeerService on loopback with an inbox of `quota` bytes; the index sees what the inbox keeps. */
async function inboxServer(quota: number, uploadStallMs?: number) {
  const dir = mkdtempSync(join(tmpdir(), 'peerdir-inbox-'))
  const index = new ShareIndex(dir, new HashCache(join(dir, '.cache.json')))
  await index.scan()
  const routes = peerServiceRoutes({
    index,
    username: () => 'bob',
    acceptUploads: true,
    inboxDir: join(dir, 'inbox'),
    maxUploadBytes: quota,
    inboxQuotaBytes: quota,
    uploadStallMs,
    onStale: () => {},
    onUploaded: (file) => index.addVerified(file),
  })
  const rpc = await startRpcServer({ interceptors: [], routes, port: 0, host: '127.0.0.1' })
  return {
    index,
    inbox: join(dir, 'inbox'),
    client: peerClient(`http://127.0.0.1:${rpc.port}`),
    close: async () => {
      await rpc.stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

describe('an upload the inbox turns away', () => {
  it('refused for the quota, leaves its bytes free to be sent again, and taken once there is room', async () => {
    const server = await inboxServer(1024 * 1024)
    try {
      const kept = randomBytes(600 * 1024)
      expect((await server.client.upload(uploadOf('kept.bin', kept))).name).toBe('kept.bin')
      const refused = randomBytes(600 * 1024)
      expect(await codeOf(server.client.upload(uploadOf('later.bin', refused)))).toBe('ResourceExhausted')
      // Not "being received": the refusal left nothing behind for the same bytes.
      expect(await codeOf(server.client.upload(uploadOf('later.bin', refused)))).toBe('ResourceExhausted')
      rmSync(join(server.inbox, 'kept.bin'))
      await server.index.scan()
      expect((await server.client.upload(uploadOf('later.bin', refused))).name).toBe('later.bin')
    } finally {
      await server.close()
    }
  })

  it('cuts an upload that trickles, and gives its claim on the inbox back', async () => {
    const quota = 1024 * 1024
    const server = await inboxServer(quota, 2000)
    let stop = () => {}
    const never = new Promise<void>((resolve) => {
      stop = resolve
    })
    try {
      const declared = randomBytes(quota)
      // The header claims the whole inbox, then one byte, then nothing.
      async function* trickle(): AsyncIterable<UploadRequest> {
        const header = create(UploadHeaderSchema, {
          name: 'slow.bin',
          size: BigInt(quota),
          sha256: sha256(declared),
        })
        yield create(UploadRequestSchema, { part: { case: 'header', value: header } })
        yield create(UploadRequestSchema, { part: { case: 'data', value: declared.subarray(0, 1) } })
        await never
      }
      const cut = await server.client.upload(trickle()).then(
        () => undefined,
        (err) => ConnectError.from(err),
      )
      expect(cut?.code).toBe(Code.DeadlineExceeded)
      expect(cut?.rawMessage).toMatch(/less than 256 KiB in 2 s/)
      // Its claim is back: an upload of the whole quota fits, and the cut one left no file.
      const whole = randomBytes(quota)
      expect((await server.client.upload(uploadOf('whole.bin', whole))).name).toBe('whole.bin')
      expect(readdirSync(server.inbox)).toEqual(['whole.bin'])
    } finally {
      stop()
      await server.close()
    }
  })
})
