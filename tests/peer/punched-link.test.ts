import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { HashCache } from '../../peer/src/content/hash-cache.ts'
import { ShareIndex } from '../../peer/src/content/share-index.ts'
import { selfSignedCertificate } from '../../peer/src/daemon/self-signed-certificate.ts'
import { downloadFastPath } from '../../peer/src/serve/download-fast-path.ts'
import { peerServiceRoutes } from '../../peer/src/serve/peer-service.ts'
import { DownloadClient, LinkMovedError } from '../../peer/src/wire/download-client.ts'
import { PeerConnection, spkiFingerprint } from '../../peer/src/wire/peer-connection.ts'
import { INTRODUCE_PATH } from '../../peer/src/wire/relay-protocol.ts'
import { type RpcServer, startRpcServer } from '../../peer/src/wire/transport.ts'
import { closeServer, listen } from '../support/ports.ts'
import { servingOptions } from '../support/serving-options.ts'
import { until } from '../support/waiting.ts'

// The caller's side of a punch, on loopback: a stand-in relay answers the introduction with the address
// of a TLS server, which is whoever answers there. Only the key the directory listed may be linked to.

const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()))
})

function identity(): { key: string; cert: string; fingerprint: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return {
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    cert: selfSignedCertificate(privateKey, publicKey, '127.0.0.1'),
    fingerprint: spkiFingerprint(publicKey),
  }
}

/** An HTTP/2 server over TLS with `who`'s certificate, answering every request with its name. */
async function tlsPeer(who: ReturnType<typeof identity>, name: string): Promise<number> {
  const server = http2.createSecureServer({ key: who.key, cert: who.cert, allowHTTP1: false }, (_req, res) =>
    res.end(name),
  )
  const sockets = new Set<net.Socket>()
  server.on('connection', (socket: net.Socket) => sockets.add(socket))
  closers.push(() => closeServer(server, sockets))
  return listen(server)
}

/** A relay that only introduces: every introduction to `username` names `port` on loopback. */
async function introducer(username: string, port: number): Promise<{ url: string; asked: () => number }> {
  let asked = 0
  const server = http.createServer((req, res) => {
    asked++
    if (req.method !== 'POST' || req.url !== `${INTRODUCE_PATH}${username}`)
      return void res.writeHead(404).end()
    const body = JSON.stringify({ address: '127.0.0.1', port })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
  closers.push(() => closeServer(server, []))
  const relayPort = await listen(server)
  return { url: `http://127.0.0.1:${relayPort}/relayed/${username}`, asked: () => asked }
}

async function get(socket: net.Socket): Promise<string> {
  const session = http2.connect('https://alice.peer', { createConnection: () => socket })
  try {
    const stream = session.request({ ':path': '/' })
    const parts: Buffer[] = []
    for await (const part of stream) parts.push(part as Buffer)
    return Buffer.concat(parts).toString()
  } finally {
    session.close()
  }
}

describe('a punched link to a relayed peer', () => {
  it('is used for bytes once it presents the listed key', async () => {
    const alice = identity()
    const relay = await introducer('alice', await tlsPeer(alice, 'alice'))
    const connection = new PeerConnection({ url: relay.url, key: alice.fingerprint })
    expect(connection.route).toBe('relayed')
    let told = 0
    connection.onPunched(() => told++)

    await connection.punch()

    expect(connection.punchError).toBe('')
    expect(told).toBe(1)
    expect(await get(connection.openForBytes())).toBe('alice')
    expect(relay.asked()).toBe(1)
  })

  it('is refused when whoever answers at the punched address presents another key', async () => {
    const alice = identity()
    const mallory = identity()
    const relay = await introducer('alice', await tlsPeer(mallory, 'mallory'))
    const connection = new PeerConnection({ url: relay.url, key: alice.fingerprint })
    let told = 0
    connection.onPunched(() => told++)

    await connection.punch()

    expect(connection.punchError).toMatch(
      `key mismatch at the punched address: ${mallory.fingerprint} presented`,
    )
    expect(connection.route).toBe('relayed')
    expect(told).toBe(0)
    // Not tried again at once: a failed punch waits its turn (a symmetric NAT fails every time).
    await connection.punch()
    expect(relay.asked()).toBe(1)
    // The refusal is the punch's, not the source's: calls through the relay are not refused for it.
    expect(connection.refusal).toBeUndefined()
  })

  it('is never tried for a peer listed without a key', async () => {
    const relay = await introducer('alice', 9)
    const connection = new PeerConnection({ url: relay.url, key: null })
    await connection.punch()
    expect(relay.asked()).toBe(0)
  })
})

/**
 * A relay in miniature for one in-process peer: a connection that opens with TLS (a pinned caller's
 * tunnel) is handed to the peer as a tunnel, its bytes counted; an introduction is answered, once
 * `introduce` is called, with a port of its own that hands what it accepts to the peer the same way. So
 * the test decides when the punch succeeds.
 */
async function inProcessRelay(username: string, peer: RpcServer) {
  const tunnels: net.Socket[] = []
  let release: () => void = () => {}
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  const held = new Set<net.Socket>()
  const toPeer = (socket: net.Socket) => {
    peer.accept(socket, { tunneled: true })
    process.nextTick(() => socket.resume())
  }
  const punched: net.Socket[] = []
  const punchPort = net.createServer((socket) => {
    held.add(socket)
    punched.push(socket)
    toPeer(socket)
  })
  closers.push(() => closeServer(punchPort, held))
  const punchAt = await listen(punchPort)
  const answerer = http.createServer((req, res) => {
    if (req.url !== `${INTRODUCE_PATH}${username}`) return void res.writeHead(404).end()
    void released.then(() => {
      const body = JSON.stringify({ address: '127.0.0.1', port: punchAt })
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
      res.end(body)
    })
  })
  const relay = net.createServer((socket) => {
    held.add(socket)
    socket.once('data', (first) => {
      socket.pause()
      socket.unshift(first)
      if (first[0] !== 0x16) {
        answerer.emit('connection', socket)
        return void process.nextTick(() => socket.resume())
      }
      tunnels.push(socket)
      toPeer(socket)
    })
  })
  closers.push(() => closeServer(relay, held))
  const relayPort = await listen(relay)
  return {
    url: `http://127.0.0.1:${relayPort}/relayed/${username}`,
    carried: () => tunnels.reduce((sum, socket) => sum + socket.bytesRead + socket.bytesWritten, 0),
    tunnelCount: () => tunnels.length,
    /** Every tunnel so far closed: what the peer had queued on them is written (or dropped) by then. */
    tunnelsClosed: () =>
      until(async () => tunnels.every((socket) => socket.closed), 'the relayed tunnels to close', 10_000),
    introduce: release,
    /** Cuts the punched links, as a NAT that forgets a mapping would. */
    dropPunched: () => {
      for (const socket of punched) socket.resetAndDestroy()
    },
  }
}

describe('a transfer to a relayed source', () => {
  it('moves its calls from the relay to the punched link as soon as it comes up', async () => {
    const content = randomBytes(24 * 1024 * 1024)
    const dir = mkdtempSync(join(tmpdir(), 'peerdir-punched-move-'))
    writeFileSync(join(dir, 'content.bin'), content)
    const index = new ShareIndex(dir, new HashCache(join(dir, '.cache.json')))
    await index.scan()
    const sha = index.files[0]?.sha256 ?? ''
    const alice = identity()
    const service = servingOptions(index, dir, 'alice')
    const server = await startRpcServer({
      port: 0,
      host: '127.0.0.1',
      interceptors: [],
      routes: peerServiceRoutes(service),
      tls: { key: alice.key, cert: alice.cert },
      fastPath: downloadFastPath({ service, verifyPeer: async () => 'caller' }),
    })
    closers.push(() => server.stop())
    const relay = await inProcessRelay('alice', server)
    const connection = new PeerConnection({ url: relay.url, key: alice.fingerprint })
    const client = new DownloadClient(connection)
    closers.push(async () => client.close())
    const whole = { sha256: sha, offset: 0, length: content.length, segmentBytes: 1024 * 1024 }
    const signal = new AbortController().signal

    // The first call goes through the relay (its punch waits on the introduction): one segment read,
    // the rest of the call in flight when the punched link comes up.
    const call = client.download(whole, undefined, signal)[Symbol.asyncIterator]()
    const first = await call.next()
    expect(Buffer.from(first.value as Uint8Array).equals(content.subarray(0, 1024 * 1024))).toBe(true)
    expect(client.route).toBe('relayed')
    const punched = new Promise<void>((resolve) => connection.onPunched(resolve))
    relay.introduce()
    await punched
    expect(client.route).toBe('punched')
    // The call through the relay ends as moved (its chunks are asked again), not as a failed source.
    await expect(async () => {
      for (let next = await call.next(); !next.done; next = await call.next()) {}
    }).rejects.toBeInstanceOf(LinkMovedError)

    // The relayed session closes with its moved call (bytes the peer had queued on it may still cross
    // until then). The next call runs on the punched link: the relay carries none of its 24 MiB.
    await relay.tunnelsClosed()
    const carriedBefore = relay.carried()
    const tunnelsBefore = relay.tunnelCount()
    const hash = createHash('sha256')
    for await (const piece of client.download(whole, undefined, signal)) hash.update(piece)
    expect(hash.digest('hex')).toBe(sha)
    expect(relay.tunnelCount()).toBe(tunnelsBefore)
    expect(relay.carried()).toBe(carriedBefore)

    // The punched link dropped mid-call: the call fails, the transfer falls back (once for that link)
    // and the next call goes through the relay.
    const third = client.download(whole, undefined, signal)[Symbol.asyncIterator]()
    await third.next()
    relay.dropPunched()
    await expect(async () => {
      for (let next = await third.next(); !next.done; next = await third.next()) {}
    }).rejects.toThrow()
    expect(client.fallBackToRelay()).toBe(true)
    expect(connection.route).toBe('relayed')
    const again = createHash('sha256')
    for await (const piece of client.download(whole, undefined, signal)) again.update(piece)
    expect(again.digest('hex')).toBe(sha)
    expect(relay.carried() - carriedBefore).toBeGreaterThan(content.length)
  })
})
