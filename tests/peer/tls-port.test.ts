import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
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
