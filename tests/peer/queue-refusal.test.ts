import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Code, ConnectError, createClient, type Transport } from '@connectrpc/connect'
import { createConnectTransport, createGrpcWebTransport } from '@connectrpc/connect-node'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { HashCache } from '../../peer/src/content/hash-cache.ts'
import { ShareIndex } from '../../peer/src/content/share-index.ts'
import { PeerService } from '../../peer/src/gen/peerdir/v1/peer_pb.ts'
import { downloadFastPath } from '../../peer/src/serve/download-fast-path.ts'
import { type PeerServiceOptions, peerServiceRoutes } from '../../peer/src/serve/peer-service.ts'
import { EARLY_PENALTY_MS, retryAfterMs, UploadSlots } from '../../peer/src/serve/upload-slots.ts'
import { DownloadClient } from '../../peer/src/wire/download-client.ts'
import { queuePlaceOf } from '../../peer/src/wire/queue-refusal.ts'
import { type RpcServer, startRpcServer } from '../../peer/src/wire/transport.ts'
import { servingOptions } from '../support/serving-options.ts'

// A queued caller's Download is refused the same way by every path a call can take: the fast path
// (raw gRPC on HTTP/2), and Connect's handler for gRPC, gRPC-web and the Connect protocol. Each says
// RESOURCE_EXHAUSTED with the place and the wait in metadata the downloader reads.
let dir = ''
let sha = ''
let service: PeerServiceOptions
const servers: RpcServer[] = []
const urls = { fast: '', connect: '' }

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'peerdir-queue-refusal-'))
  writeFileSync(join(dir, 'content.bin'), randomBytes(64 * 1024))
  const index = new ShareIndex(dir, new HashCache(join(dir, '.cache.json')))
  await index.scan()
  sha = index.files[0]?.sha256 ?? ''
  service = servingOptions(index, dir, 'slotted')
  const listen = async (fast: boolean) => {
    const server = await startRpcServer({
      port: 0,
      host: '127.0.0.1',
      interceptors: [],
      routes: peerServiceRoutes(service),
      // The caller is whoever its authorization header names (none: an anonymous caller, by address).
      fastPath: fast
        ? downloadFastPath({ service, verifyPeer: async (authorization) => authorization ?? '' })
        : undefined,
    })
    servers.push(server)
    return `http://127.0.0.1:${server.port}`
  }
  urls.fast = await listen(true)
  urls.connect = await listen(false)
})
// Slots whose one slot is somebody else's: the test's call waits, first in line.
beforeEach(() => {
  service.slots = new UploadSlots({ slots: 1, maxQueue: 4 })
  if (!('ticket' in service.slots.admit('somebody-else'))) throw new Error('the slot should be free')
})
afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()))
  rmSync(dir, { recursive: true, force: true })
})

async function refusal(call: () => Promise<unknown>): Promise<ConnectError> {
  try {
    await call()
  } catch (err) {
    return ConnectError.from(err)
  }
  throw new Error('the call was served')
}

const downloaded = (url: string, caller?: string) => async () => {
  const client = new DownloadClient(url)
  const headers: Record<string, string> = caller === undefined ? {} : { authorization: caller }
  try {
    for await (const _ of client.download(
      { sha256: sha, offset: 0, length: 1024 },
      headers,
      AbortSignal.timeout(5000),
    ));
  } finally {
    client.close()
  }
}

const viaConnect = (transport: Transport) => async () => {
  for await (const _ of createClient(PeerService, transport).download({ sha256: sha, length: 1024n }));
}

describe('the refusal of a queued Download', () => {
  it.each([
    ['the fast path', () => downloaded(urls.fast)],
    ['Connect’s gRPC handler', () => downloaded(urls.connect)],
    ['gRPC-web', () => viaConnect(createGrpcWebTransport({ baseUrl: urls.connect, httpVersion: '1.1' }))],
    [
      'the Connect protocol',
      () => viaConnect(createConnectTransport({ baseUrl: urls.connect, httpVersion: '2' })),
    ],
  ])('names the place and the wait through %s', async (_, call) => {
    const err = await refusal(call())
    expect(err.code).toBe(Code.ResourceExhausted)
    expect(err.rawMessage).toMatch(
      /every upload slot of slotted is taken: you are number 1 of 1 in its queue; ask again in 1 s/,
    )
    expect(queuePlaceOf(err)).toEqual({ place: 1, retryAfterMs: retryAfterMs(1) })
  })

  it('still serves the manifest: only Download calls wait', async () => {
    const client = createClient(PeerService, createConnectTransport({ baseUrl: urls.fast, httpVersion: '2' }))
    expect((await client.getManifest({ sha256: sha })).sha256).toBe(sha)
  })

  it('sends a caller that asks in a tight loop to the back and slows it; the others keep their order', async () => {
    const place = async (caller: string) => {
      const answer = queuePlaceOf(await refusal(downloaded(urls.fast, caller)))
      if (!answer) throw new Error('no queue place in the refusal')
      return answer
    }
    expect((await place('bob')).place).toBe(1)
    expect((await place('carol')).place).toBe(2)
    expect((await place('dave')).place).toBe(3)
    // bob asks again and again, never waiting the second he was told.
    const asks: { place: number; retryAfterMs: number }[] = []
    while (asks.at(-1)?.place !== 3) asks.push(await place('bob'))
    const order = () => service.slots?.state().queued.map((q) => q.username)
    expect(order()).toEqual(['carol', 'dave', 'bob'])
    // Slowed: told to wait longer than his place alone would (twice as long per early ask).
    expect(asks.at(-1)?.retryAfterMs).toBeGreaterThanOrEqual(2 * retryAfterMs(3))
    const early = performance.now()
    asks.push(await place('bob'))
    // Once more too soon: a second more (the refusal is held back), longer still, and the others stay.
    expect(performance.now() - early).toBeGreaterThanOrEqual(EARLY_PENALTY_MS - 50)
    expect(asks.at(-1)?.retryAfterMs).toBeGreaterThanOrEqual(4 * retryAfterMs(3))
    expect(order()).toEqual(['carol', 'dave', 'bob'])
  })

  it('lets a friend skip a queue of three: first in line, the others in their order', async () => {
    service.slots = new UploadSlots({ slots: 1, maxQueue: 4, friends: ['frida'] })
    const holder = service.slots.admit('somebody-else')
    if (!('ticket' in holder)) throw new Error('the slot should be free')
    for (const [i, caller] of ['bob', 'carol', 'dave'].entries())
      expect(queuePlaceOf(await refusal(downloaded(urls.fast, caller)))?.place).toBe(i + 1)
    expect(queuePlaceOf(await refusal(downloaded(urls.fast, 'frida')))?.place).toBe(1)
    expect(service.slots.state().queued.map((q) => q.username)).toEqual(['frida', 'bob', 'carol', 'dave'])
  })
})
