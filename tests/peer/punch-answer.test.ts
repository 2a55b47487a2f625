import http2 from 'node:http2'
import type net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { punchAnswerer } from '../../peer/src/wire/punch-answer.ts'
import { PUNCH_PATH, PUNCH_TO_HEADER } from '../../peer/src/wire/relay-protocol.ts'
import { closeServer, listen } from '../support/ports.ts'

// A daemon's answer to its relay's punch requests, over a real HTTP/2 link on loopback (the relay is
// the client, as on a registered link). The relay names the address the daemon dials: what it may
// name is bounded here, and nothing refused is dialled.

const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()))
  delete process.env.PEERDIR_PUNCH
})

/** A daemon's link end answering punches, and the relay's client session on it. */
async function link(tls: boolean) {
  const served: net.Socket[] = []
  const answerer = punchAnswerer({ tls, serve: (socket) => served.push(socket) })
  const server = http2.createServer()
  const held = new Set<net.Socket>()
  server.on('connection', (socket: net.Socket) => held.add(socket))
  server.on('stream', (stream, headers) => answerer.answer(stream, headers))
  const port = await listen(server)
  const relay = http2.connect(`http://127.0.0.1:${port}`)
  closers.push(async () => {
    relay.destroy()
    await closeServer(server, held)
  })
  const ask = (to: string | undefined) =>
    new Promise<number>((resolve, reject) => {
      const stream = relay.request(
        { ':method': 'POST', ':path': PUNCH_PATH, ...(to === undefined ? {} : { [PUNCH_TO_HEADER]: to }) },
        { endStream: true },
      )
      stream.once('response', (headers) => resolve(Number(headers[':status'])))
      stream.once('error', reject)
      stream.resume()
    })
  return { ask, served, links: answerer.links }
}

describe('a daemon answering its relay’s punch requests', () => {
  it('refuses addresses that are not on the network, or of the other family, or not addresses', async () => {
    const { ask, served } = await link(true)
    for (const to of [
      undefined,
      '',
      'example.com:443',
      '127.0.0.1:8080', // this machine
      '127.8.9.10:8080',
      '0.0.0.0:8080', // Linux takes it for this machine
      '169.254.169.254:80', // link-local: a cloud's metadata service
      '224.0.0.1:9', // multicast
      '255.255.255.255:9', // broadcast
      '[2001:db8::1]:443', // the link is IPv4
      '10.0.0.1:0',
      '10.0.0.1:65536',
      '10.0.0.1',
    ]) {
      expect(await ask(to), String(to)).toBe(400)
    }
    expect(served).toEqual([])
  })

  it('takes no punch without TLS (501), nor with PEERDIR_PUNCH=off (403)', async () => {
    const plaintext = await link(false)
    expect(await plaintext.ask('10.0.0.1:4000')).toBe(501)
    process.env.PEERDIR_PUNCH = 'off'
    const quiet = await link(true)
    expect(await quiet.ask('10.0.0.1:4000')).toBe(403)
    expect(quiet.links()).toBe(0)
  })
})
