import { randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import http2 from 'node:http2'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { create, toBinary } from '@bufbuild/protobuf'
import { afterEach, describe, expect, it } from 'vitest'
import { HashCache } from '../../peer/src/content/hash-cache.ts'
import { ShareIndex } from '../../peer/src/content/share-index.ts'
import { DownloadRequestSchema } from '../../peer/src/gen/peerdir/v1/peer_pb.ts'
import { downloadFastPath } from '../../peer/src/serve/download-fast-path.ts'
import { type PeerServiceOptions, peerServiceRoutes } from '../../peer/src/serve/peer-service.ts'
import { RateLimiter } from '../../peer/src/serve/rate-limit.ts'
import { addressKey, ConnectionSlots, MAX_CONNECTIONS } from '../../peer/src/wire/connection-slots.ts'
import { DOWNLOAD_PATH, envelope } from '../../peer/src/wire/grpc-wire.ts'
import { startRpcServer } from '../../peer/src/wire/transport.ts'
import { sessionOnly } from '../support/connection-flood.ts'
import { until } from '../support/peer-process.ts'

const cleanups: (() => void)[] = []
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup()
})

describe('addressKey', () => {
  it('counts IPv4 by address (also IPv4-mapped) and IPv6 by its /64', () => {
    expect(addressKey('192.0.2.7')).toBe('192.0.2.7')
    expect(addressKey('::ffff:192.0.2.7')).toBe('192.0.2.7')
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64')
    expect(addressKey('2001:0db8:0001:0002:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64')
    expect(addressKey('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64')
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64')
    expect(addressKey('::1')).toBe('0:0:0:0::/64')
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64')
    expect(addressKey('::192.0.2.7')).toBe('0:0:0:0::/64')
  })
})

/** A real server on 127.0.0.1 whose connections go through `slots`; `accepted` in arrival order. */
async function slotServer(slots: ConnectionSlots) {
  const accepted: net.Socket[] = []
  const server = net.createServer((socket) => {
    socket.on('error', () => {})
    accepted.push(socket)
    slots.admit(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => {
    slots.destroyAll()
    server.close()
  })
  const port = (server.address() as net.AddressInfo).port
  /** Connects from `localAddress` and waits until the server has taken (or refused) it. */
  const connect = async (localAddress: string) => {
    const before = accepted.length
    const socket = net.connect({ host: '127.0.0.1', port, localAddress })
    socket.on('error', () => {})
    socket.resume()
    await until(async () => accepted.length > before, 'the server to accept the connection')
    return accepted[before] as net.Socket
  }
  return { connect }
}

describe('ConnectionSlots', () => {
  it('keeps its caps when one caller address and port reach two local addresses', async () => {
    const slots = new ConnectionSlots(10, 2)
    const accepted: net.Socket[] = []
    const servers = ['127.0.0.1', '127.0.0.2'].map(() =>
      net.createServer((socket) => {
        socket.on('error', () => {})
        accepted.push(socket)
        slots.admit(socket)
      }),
    )
    const [near, far] = servers as [net.Server, net.Server]
    await new Promise<void>((resolve) => near.listen(0, '127.0.0.1', resolve))
    const port = (near.address() as net.AddressInfo).port
    await new Promise<void>((resolve) => far.listen(port, '127.0.0.2', resolve))
    cleanups.push(() => {
      slots.destroyAll()
      for (const server of servers) server.close()
    })
    const connect = async (host: string, localPort?: number) => {
      const before = accepted.length
      const socket = net.connect({ host, port, localAddress: '127.0.0.3', localPort })
      socket.on('error', () => {})
      socket.resume()
      await until(async () => accepted.length > before, 'the server to accept the connection')
      return socket
    }
    // The same caller address and port at both local addresses: one key before, so one slot was lost.
    const first = await connect('127.0.0.1')
    const localPort = first.localPort as number
    const twin = await connect('127.0.0.2', localPort)
    first.destroy()
    twin.destroy()
    await until(async () => accepted.every((socket) => socket.destroyed), 'both to close')
    const flood = []
    for (let i = 0; i < 6; i++) flood.push(await connect('127.0.0.1'))
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(accepted.slice(2).filter((socket) => !socket.destroyed).length).toBe(2)
  })

  it('makes room at a full address by closing its connection idle longest; one in use stays', async () => {
    const slots = new ConnectionSlots(10, 2)
    const { connect } = await slotServer(slots)
    const first = await connect('127.0.0.2')
    const second = await connect('127.0.0.2')
    const elsewhere = await connect('127.0.0.3')
    const call = slots.callStarted(first)
    const third = await connect('127.0.0.2')
    // `first` has a call in flight: `second` is the idle one.
    expect([first.destroyed, second.destroyed, third.destroyed, elsewhere.destroyed]).toEqual([
      false,
      true,
      false,
      false,
    ])
    // With its call over, `first` has been idle longest... after `third`, which has been idle since it came.
    slots.callEnded(call)
    const fourth = await connect('127.0.0.2')
    expect([first.destroyed, third.destroyed, fourth.destroyed]).toEqual([false, true, false])
    expect(slots.size).toBe(3)
  })

  it('makes room when full by closing the connection idle longest anywhere, and refuses a newcomer when all are in use', async () => {
    const slots = new ConnectionSlots(3, 2)
    const { connect } = await slotServer(slots)
    const a = await connect('127.0.0.2')
    const b = await connect('127.0.0.3')
    const c = await connect('127.0.0.4')
    const d = await connect('127.0.0.5')
    expect([a.destroyed, b.destroyed, c.destroyed, d.destroyed]).toEqual([true, false, false, false])
    for (const socket of [b, c, d]) slots.callStarted(socket)
    const refused = await connect('127.0.0.6')
    expect(refused.destroyed).toBe(true)
    expect([b.destroyed, c.destroyed, d.destroyed]).toEqual([false, false, false])
    expect(slots.size).toBe(3)
  })
})

/** A session from `localAddress` with one Download under way: resolves once the server has answered its headers. */
function downloadUnderWay(port: number, localAddress: string, body: Buffer) {
  return new Promise<http2.ClientHttp2Stream>((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`, {
      createConnection: () => net.connect({ host: '127.0.0.1', port, localAddress }),
    })
    session.on('error', reject)
    const stream = session.request({
      ':method': 'POST',
      ':path': DOWNLOAD_PATH,
      'content-type': 'application/grpc+proto',
      te: 'trailers',
    })
    stream.on('error', reject)
    stream.on('data', () => {})
    stream.once('response', () => resolve(stream))
    stream.end(body)
  })
}

describe('the RPC port when every slot has a call in flight', () => {
  it('refuses a newcomer and closes none of them; once a call ends, its idle connection gives way', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'peerdir-slots-'))
    writeFileSync(join(dir, 'slow.bin'), randomBytes(1000))
    const index = new ShareIndex(dir, new HashCache(join(dir, '.cache.json')))
    await index.scan()
    const service: PeerServiceOptions = {
      index,
      username: () => 'busy',
      acceptUploads: false,
      inboxDir: join(dir, 'inbox'),
      inboxQuotaBytes: 0,
      maxUploadBytes: 0,
      // One byte a second, shared: once a first call has spent the burst, each call waits 1,000 s.
      limiter: new RateLimiter(1),
      onStale: () => {},
      onUploaded: () => {},
    }
    const server = await startRpcServer({
      port: 0,
      host: '127.0.0.1',
      interceptors: [],
      routes: peerServiceRoutes(service),
      fastPath: downloadFastPath({ service, verifyPeer: async () => 'caller' }),
    })
    cleanups.push(() => void server.stop())
    const { port } = server
    const body = envelope(
      toBinary(DownloadRequestSchema, create(DownloadRequestSchema, { sha256: index.files[0]?.sha256 })),
    )
    // The first call takes the limiter's burst (its 1,000 bytes go at once); then its connection goes.
    ;(await downloadUnderWay(port, '127.0.0.1', body)).session?.destroy()

    const addresses = Array.from({ length: 16 }, (_, i) => `127.0.2.${i + 1}`)
    const busy: http2.ClientHttp2Stream[] = []
    cleanups.push(() => {
      for (const stream of busy) stream.session?.destroy()
    })
    for (const from of addresses) {
      const sessions = Array.from({ length: MAX_CONNECTIONS / addresses.length }, () =>
        downloadUnderWay(port, from, body),
      )
      busy.push(...(await Promise.all(sessions)))
    }
    const closed = () => busy.filter((stream) => stream.session?.destroyed !== false).length
    await expect(sessionOnly(port, '127.0.0.1', { call: 'answered' })).rejects.toThrow()
    expect(closed()).toBe(0)

    // One call is cancelled, its session kept: that connection is now idle, and the next newcomer takes its slot.
    const ended = busy[0] as http2.ClientHttp2Stream
    const endedSession = ended.session as http2.ClientHttp2Session
    ended.close(http2.constants.NGHTTP2_CANCEL)
    await until(
      () =>
        sessionOnly(port, '127.0.0.1', { call: 'answered' }).then(
          () => true,
          () => false,
        ),
      'a slot to be free again',
    )
    await until(async () => endedSession.destroyed, 'the idle connection to be closed')
    expect(closed()).toBe(1)
  })
})
