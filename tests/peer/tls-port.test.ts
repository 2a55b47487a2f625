import { mkdtempSync, rmSync } from 'node:fs'
import http2 from 'node:http2'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Duplex } from 'node:stream'
import tls from 'node:tls'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { ownIdentity } from '../../peer/src/daemon/peer-key.ts'
import { ListeningPort } from '../../peer/src/wire/listening-port.ts'
import { type RpcServer, serveRpc } from '../../peer/src/wire/transport.ts'

/**
 * A port serving TLS (transport.ts, listening-port.ts): told by the first byte, TLS reaches RPCs and the
 * plain-HTTP hook; plain HTTP reaches only the hook, and only from this machine; a connection a relay
 * tunnels in is never "this machine", whatever its socket's address says.
 */
let state = ''
let server: RpcServer
const tunnels: net.Server[] = []

beforeAll(async () => {
  state = mkdtempSync(join(tmpdir(), 'peerdir-tls-port-'))
  const listening = new ListeningPort()
  server = serveRpc(listening, {
    routes: () => {},
    interceptors: [],
    tls: ownIdentity(state, 'tester'),
    plainHttp: (req, res) => {
      if (!req.url?.startsWith('/content/')) return false
      ;(res as import('node:http').ServerResponse).end('gateway')
      return true
    },
  })
  await listening.listen(0, '127.0.0.1')
})
afterAll(async () => {
  for (const tunnel of tunnels) tunnel.close()
  await server.stop()
  rmSync(state, { recursive: true, force: true })
})

/** One HTTP/1.1 GET written on `socket`; answers what came back before it closed. */
const get = (socket: net.Socket, path: string) =>
  new Promise<string>((resolve) => {
    let answer = ''
    socket.on('data', (data) => {
      answer += data.toString()
    })
    socket.on('error', () => {})
    socket.on('close', () => resolve(answer))
    socket.write(`GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`)
  })

const direct = () => net.connect({ host: '127.0.0.1', port: server.port })

/** A connection handed to the port as a relay's tunnel would: its socket's peer is on loopback too. */
async function tunneled(): Promise<net.Socket> {
  const tunnel = net.createServer((socket) => server.accept(socket, { tunneled: true }))
  tunnels.push(tunnel)
  await new Promise<void>((resolve) => tunnel.listen(0, '127.0.0.1', resolve))
  return net.connect({ host: '127.0.0.1', port: (tunnel.address() as net.AddressInfo).port })
}

const overTls = (socket: net.Socket) =>
  tls.connect({ socket, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }) as unknown as net.Socket

it('answers plain HTTP from this machine with the gateway only, and a plain RPC with 426', async () => {
  expect(await get(direct(), '/content/abc')).toMatch(/^HTTP\/1\.1 200[\s\S]*gateway$/)
  expect(await get(direct(), '/peerdir.v1.PeerService/GetInfo')).toMatch(/^HTTP\/1\.1 426/)
})

it('closes plain HTTP tunneled in, though its socket is on loopback', async () => {
  expect(await get(await tunneled(), '/content/abc')).toBe('')
})

it('serves TLS tunneled in, but never the local-only hook there', async () => {
  expect(await get(overTls(direct()), '/content/abc')).toMatch(/^HTTP\/1\.1 200[\s\S]*gateway$/)
  expect(await get(overTls(await tunneled()), '/content/abc')).not.toMatch(/gateway/)
})

/**
 * A relay's link to the port (serveReverse), as the relay holds it: HTTP/2 the other way round, one
 * CONNECT stream per caller's tunnel, TLS and the caller's HTTP/2 inside it.
 */
async function reverseLink() {
  const sockets = net.createServer((socket) => server.serveReverse(socket))
  tunnels.push(sockets)
  await new Promise<void>((resolve) => sockets.listen(0, '127.0.0.1', resolve))
  const link = http2.connect(`http://127.0.0.1:${(sockets.address() as net.AddressInfo).port}`)
  link.on('error', () => {})
  await new Promise((resolve) => link.once('connect', resolve))
  return link
}

/** A caller's call through a fresh tunnel on `link`: the status its answer carries, or why it failed. */
function callThroughTunnel(link: http2.ClientHttp2Session): Promise<string> {
  return new Promise((resolve) => {
    const tunnel = link.request({ ':method': 'CONNECT', ':authority': 'tester.relayed:443' })
    tunnel.on('error', (err) => resolve(`tunnel: ${err.message}`))
    tunnel.once('response', (headers) => {
      if (headers[':status'] !== 200) return resolve(`tunnel refused: ${headers[':status']}`)
      const secure = tls.connect({
        socket: tunnel as unknown as Duplex,
        ALPNProtocols: ['h2'],
        rejectUnauthorized: false,
      })
      const session = http2.connect('https://tester.relayed', { createConnection: () => secure })
      session.on('error', (err) => resolve(`session: ${err.message}`))
      const call = session.request({
        ':method': 'POST',
        ':path': '/peerdir.v1.PeerService/GetInfo',
        'content-type': 'application/grpc',
        te: 'trailers',
      })
      call.on('error', (err) => resolve(`call: ${err.message}`))
      let status = 'no status'
      call.once('trailers', (trailers) => {
        status = String(trailers['grpc-status'])
      })
      call.once('response', (headers) => {
        status = String(headers['grpc-status'] ?? `http ${headers[':status']}`)
      })
      call.resume()
      call.once('close', () => {
        session.close()
        tunnel.close()
        resolve(status)
      })
      call.end(Buffer.from([0, 0, 0, 0, 0]))
    })
  })
}

it('serves RPCs to tunnels on a relay link, each a fresh TLS and HTTP/2 inside a CONNECT stream', async () => {
  const link = await reverseLink()
  try {
    const answers: string[] = []
    for (let i = 0; i < 40; i++) answers.push(await callThroughTunnel(link))
    // No service is routed here: every call is answered (404, as any path the port does not serve),
    // each over its own tunnel.
    expect(answers).toEqual(answers.map(() => 'http 404'))
  } finally {
    link.destroy()
  }
})
