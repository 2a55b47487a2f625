// The relay's links, on loopback without a network namespace: a directory process, the relay in
// process (so a test can act as its operator, holding the HTTP/2 client session on a daemon's link),
// links registered by raw clients as the daemon registers them, and a real daemon behind the relay.
import { createHash, randomBytes } from 'node:crypto'
import http2 from 'node:http2'
import net from 'node:net'
import tls from 'node:tls'
import { decodeJwt } from 'jose'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { Relay, RelayOptions } from '../../peer/src/relay/relay-server.ts'
import { MAX_CONNECTIONS_PER_ADDRESS } from '../../peer/src/wire/connection-slots.ts'
import { type DirectoryProcess, postJson, startDirectoryProcess } from '../support/directory-process.ts'
import { placeFile, sleepUntil, startPeer, testStateRoot, until } from '../support/peer-process.ts'
import { startRelayInProcess } from '../support/relay-in-process.ts'
import { answeringPeer, rawTunnel, serveTunnels, sessionIn } from '../support/relay-tunnels.ts'

let directory: DirectoryProcess
beforeAll(async () => {
  directory = await startDirectoryProcess()
})
afterAll(async () => {
  await directory?.stop('SIGKILL')
})

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function relay(limits: Partial<RelayOptions> = {}): Promise<Relay & { url: string }> {
  const started = await startRelayInProcess({ directoryUrl: directory.url, ...limits })
  cleanups.push(() => started.stop())
  return Object.assign(started, { url: `http://127.0.0.1:${started.port}` })
}

/** A relay token for `relayUrl`, asked with a fresh peer session of `username`, and when it was issued (s). */
async function relayToken(username: string, relayUrl: string) {
  const login = await postJson(`${directory.url}/v1/login`, {
    username,
    password: `password-of-${username}`,
    url: 'http://127.0.0.1:9',
  })
  const session = ((await login.json()) as { token: string }).token
  const answer = await postJson(`${directory.url}/v1/relay-tokens`, { relay: relayUrl }, session)
  const { token } = (await answer.json()) as { token: string }
  return { token, issuedAt: decodeJwt(token).iat as number }
}

/** A call token for `audience`, asked by `username` (registered by this login, as a peer's first is). */
async function callToken(username: string, audience: string) {
  const login = await postJson(`${directory.url}/v1/login`, {
    username,
    password: `password-of-${username}`,
    url: 'http://127.0.0.1:9',
  })
  const session = ((await login.json()) as { token: string }).token
  const answer = await postJson(`${directory.url}/v1/call-tokens`, { audience }, session)
  return ((await answer.json()) as { token: string }).token
}

/**
 * Registers over a raw connection from `localAddress` (as the daemon does) and, once registered, serves
 * HTTP/2 on the link as a relayed peer would (each tunnel a port where every call is answered
 * `grpc-status: 0`), or, `silent`,
 * answers nothing, pings included. Resolves with the
 * head of the relay's answer, or its whole answer when it refuses.
 */
function holdLink(
  relayPort: number,
  token: string,
  localAddress = '127.0.0.1',
  silent = false,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port: relayPort, localAddress })
    cleanups.push(() => socket.destroy())
    let answer = Buffer.alloc(0)
    const onData = (chunk: Buffer) => {
      answer = Buffer.concat([answer, chunk])
      const end = answer.indexOf('\r\n\r\n')
      if (end < 0) return
      socket.off('data', onData)
      const head = answer.toString('latin1', 0, end)
      if (head.startsWith('HTTP/1.1 101')) {
        // Silent: connected, but never a byte back (a machine switched off, a NAT that forgot it).
        if (silent) return resolve(head)
        socket.pause()
        socket.unshift(answer.subarray(end + 4))
        serveTunnels(socket, answeringPeer())
        return resolve(head)
      }
      // A refusal: its one line follows the head, and the relay then closes the connection.
      socket.on('data', (more: Buffer) => {
        answer = Buffer.concat([answer, more])
      })
      socket.once('close', () => resolve(answer.toString('utf8')))
    }
    socket.on('data', onData)
    socket.on('error', reject)
    socket.write(
      `POST /v1/register HTTP/1.1\r\nhost: 127.0.0.1:${relayPort}\r\nconnection: upgrade\r\nupgrade: peerdir-relay/1\r\nauthorization: Bearer ${token}\r\ncontent-length: 0\r\n\r\n`,
    )
  })
}

/** An HTTP/2 caller of the relay from `localAddress` (the relay counts callers' connections per address). */
async function caller(relayPort: number, localAddress = '127.0.0.1') {
  const session = http2.connect(`http://127.0.0.1:${relayPort}`, {
    createConnection: () => net.connect({ host: '127.0.0.1', port: relayPort, localAddress }),
  })
  session.on('error', () => {})
  cleanups.push(() => session.destroy())
  await new Promise((resolve) => session.once('connect', resolve))
  return session
}

/** A request's status and headers (trailers merged in), or the error that ended it. */
function ask(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer) {
  return new Promise<{ headers: http2.IncomingHttpHeaders; body: Buffer; error?: string }>((resolve) => {
    const stream = session.request(headers)
    const parts: Buffer[] = []
    let answer: http2.IncomingHttpHeaders = {}
    let error: string | undefined
    stream.once('response', (h) => {
      answer = h
    })
    stream.once('trailers', (t) => {
      answer = { ...answer, ...t }
    })
    stream.on('data', (part: Buffer) => parts.push(part))
    stream.on('error', (err) => {
      error = err.message
    })
    stream.once('close', () => resolve({ headers: answer, body: Buffer.concat(parts), error }))
    stream.end(body)
  })
}

/**
 * A GetInfo to `username` through a tunnel from `localAddress`, with its call token when given (only
 * the peer reads it); its gRPC status, or the relay's refusal of the tunnel.
 */
async function getInfo(relayPort: number, username: string, localAddress = '127.0.0.1', token?: string) {
  const tunnel = await rawTunnel(relayPort, username, { localAddress })
  if (!tunnel.socket) return tunnel.answer
  const session = sessionIn(tunnel.socket)
  cleanups.push(() => session.destroy())
  const answer = await ask(
    session,
    {
      ':method': 'POST',
      ':path': '/peerdir.v1.PeerService/GetInfo',
      'content-type': 'application/grpc',
      te: 'trailers',
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    Buffer.from([0, 0, 0, 0, 0]),
  )
  session.destroy()
  return String(answer.headers['grpc-status'])
}

describe('a relay’s links', () => {
  it('refuses a registration whose token is older than the one its name is registered with (409)', async () => {
    const r = await relay()
    const older = await relayToken('homer', r.url)
    // Tokens tell their age in whole seconds: the newer one is asked in the next second.
    await sleepUntil((older.issuedAt + 1) * 1000)
    const newer = await relayToken('homer', r.url)
    expect(newer.issuedAt).toBeGreaterThan(older.issuedAt)
    expect(await holdLink(r.port, newer.token)).toMatch(/^HTTP\/1\.1 101/)
    const late = await holdLink(r.port, older.token)
    expect(late).toMatch(/^HTTP\/1\.1 409[\s\S]*homer is registered here with a newer token/)
    // The newer link still carries homer's calls.
    expect(await getInfo(r.port, 'homer')).toBe('0')
  })

  it('drops a link whose ping goes unanswered for a whole period, and keeps one that answers', async () => {
    // A period no pause of this process (the relay and maggie's end both live here) comes near.
    const r = await relay({ linkPingMs: 2000 })
    expect(await holdLink(r.port, (await relayToken('maggie', r.url)).token)).toMatch(/^HTTP\/1\.1 101/)
    const silent = await relayToken('snowball', r.url)
    expect(await holdLink(r.port, silent.token, '127.0.0.1', true)).toMatch(/^HTTP\/1\.1 101/)
    expect(r.peers.get('snowball')).toBeDefined()
    await until(async () => r.peers.get('snowball') === undefined, 'the silent link to be dropped')
    // maggie's link, registered first, has been pinged as often and answered: still there.
    expect(await getInfo(r.port, 'maggie')).toBe('0')
  })

  it('routes a tunnel by its path only, to a registered name, and answers calls to itself with unimplemented', async () => {
    const r = await relay()
    expect(await holdLink(r.port, (await relayToken('homer', r.url)).token)).toMatch(/^HTTP\/1\.1 101/)
    // The relay reads no call, so the token is the peer's business: a tunnel to homer with ned's token
    // for homer, or with none, reaches homer alike (the stub answers both; a daemon checks the token).
    const forHomer = await callToken('ned', 'homer')
    expect(await getInfo(r.port, 'homer', '127.0.0.1', forHomer)).toBe('0')
    expect(await getInfo(r.port, 'marge', '127.0.0.1', forHomer)).toMatch(
      /^HTTP\/1\.1 404[\s\S]*marge is not connected to this relay/,
    )
    // A bare call (as grpc-js sends one given the relay's address) is not routed by its token any more.
    const bare = await ask(
      await caller(r.port),
      {
        ':method': 'POST',
        ':path': '/peerdir.v1.PeerService/GetInfo',
        'content-type': 'application/grpc',
        te: 'trailers',
        authorization: `Bearer ${forHomer}`,
      },
      Buffer.from([0, 0, 0, 0, 0]),
    )
    expect(bare.headers['grpc-status']).toBe('12')
    expect(decodeURIComponent(String(bare.headers['grpc-message']))).toMatch(/forwards no calls/)
  })

  it('registers at most --max-peers, of which names it never carried take three quarters', async () => {
    const r = await relay({ maxPeers: 2 })
    expect(await holdLink(r.port, (await relayToken('lisa', r.url)).token)).toMatch(/^HTTP\/1\.1 101/)
    const refused = await holdLink(r.port, (await relayToken('bart', r.url)).token)
    expect(refused).toMatch(/^HTTP\/1\.1 503[\s\S]*this relay carries its most peers \(2\)/)
    expect(r.peers.size).toBe(1)
  })

  it('keeps links and callers in separate pools: a full caller pool from one address evicts no link, and links take no caller’s room', async () => {
    const r = await relay()
    // Four links from one address, then that address's every caller slot filled with connections that
    // made one request and now sit idle: had the links stayed in the callers' pool, the idle links (idle
    // longest) would have been closed to make room for the last four callers.
    const names = ['patty', 'selma', 'ling', 'jacqueline']
    for (const name of names) {
      expect(await holdLink(r.port, (await relayToken(name, r.url)).token, '127.0.0.2')).toMatch(
        /^HTTP\/1\.1 101/,
      )
    }
    const callers = []
    for (let i = 0; i < MAX_CONNECTIONS_PER_ADDRESS; i++) {
      const session = await caller(r.port, '127.0.0.2')
      const health = await ask(session, { ':path': '/healthz' })
      expect(health.headers[':status']).toBe(200)
      callers.push(session)
    }
    // A tunnel from another address to each of them still finds its link.
    for (const name of names) expect(await getInfo(r.port, name, '127.0.0.3')).toBe('0')
    // And every caller is still connected: no link took a caller's place.
    for (const session of callers) {
      expect((await ask(session, { ':path': '/healthz' })).headers[':status']).toBe(200)
    }
  })

  it('never lets a daemon’s content gateway answer through its link, even a relay naming a loopback host', async () => {
    const r = await relay()
    const stateRoot = testStateRoot()
    const content = randomBytes(64 * 1024)
    const sha256 = createHash('sha256').update(content).digest('hex')
    const alice = await startPeer({
      name: 'alice',
      directoryUrl: directory.url,
      stateRoot,
      args: ['--relay', r.url],
    })
    cleanups.push(() => alice.stop('SIGKILL'))
    placeFile(alice.dir, 'shared.bin', content)
    await alice.waitFor(/published changes: \+1/)
    await alice.waitFor(/registered with relay/)
    const request = {
      ':method': 'GET',
      ':path': `/content/${sha256}`,
      ':authority': `127.0.0.1:${alice.port}`,
    }
    // On its own port the gateway serves this machine what the daemon shares, without a capability.
    const direct = http2.connect(alice.url, { rejectUnauthorized: false })
    direct.on('error', () => {})
    cleanups.push(() => direct.destroy())
    const served = await ask(direct, request)
    expect(served.headers[':status']).toBe(200)
    expect(served.body.equals(content)).toBe(true)
    // On the link, as the relay's operator could send it: a request straight on the link is no tunnel
    // (405), and inside a tunnel, naming the daemon's own loopback port, only RPCs answer.
    const link = (await until(async () => r.peers.get('alice'), 'alice in the relay’s table')).session
    const onLink = await ask(link, request)
    expect(onLink.headers[':status']).toBe(405)
    const tunnel = link.request({ ':method': 'CONNECT', ':authority': `127.0.0.1:${alice.port}` })
    const opened = await new Promise<http2.IncomingHttpHeaders>((resolve) => tunnel.once('response', resolve))
    expect(opened[':status']).toBe(200)
    // TLS inside the tunnel, as a caller speaks it (in plaintext a tunnel is closed before any HTTP).
    const inside = http2.connect('https://inside', {
      createConnection: () =>
        tls.connect({
          socket: tunnel as unknown as net.Socket,
          rejectUnauthorized: false,
          ALPNProtocols: ['h2'],
        }),
    })
    inside.on('error', () => {})
    cleanups.push(() => inside.destroy())
    const throughTunnel = await ask(inside, request)
    expect(throughTunnel.headers[':status']).toBe(404)
    expect(throughTunnel.body.includes(content.subarray(0, 1024))).toBe(false)
  })
})
