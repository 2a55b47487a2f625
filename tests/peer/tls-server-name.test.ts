// The relay routes a caller's TLS by the server name in its ClientHello (relay-protocol.ts). The record
// comes from anyone: read whole within bounds, parsed with every length checked, never thrown on.
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import tls from 'node:tls'
import { afterEach, describe, expect, it } from 'vitest'
import {
  clientHelloServerName,
  readFirstRecord,
  tunnelServerName,
  tunnelUsername,
} from '../../peer/src/wire/tls-server-name.ts'
import { closeServer, listen } from '../support/ports.ts'

const stops: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop()
})

type Read = { record?: Buffer; after: () => Promise<string> }

/** A server that reads each connection's first record; `after` reads what came next, in order. */
async function firstRecords() {
  const read: Promise<Read>[] = []
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    const reading = readFirstRecord(socket, 2000).then((record) => ({
      record,
      after: () =>
        new Promise<string>((resolve) => {
          socket.once('data', (data) => resolve(String(data)))
          socket.resume()
        }),
    }))
    reading.catch(() => {}) // looked at when the test takes it
    read.push(reading)
  })
  const port = await listen(server)
  stops.push(() => closeServer(server, sockets))
  return { port, read }
}

/** A real ClientHello, as Node's TLS sends it for `servername`. */
async function realHello(servername: string): Promise<Buffer> {
  const { port, read } = await firstRecords()
  const socket = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false })
  socket.on('error', () => {})
  stops.push(() => void socket.destroy())
  while (read.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
  return (await (read[0] as Promise<Read>)).record as Buffer
}

describe('a ClientHello’s server name', () => {
  it('is read from a real ClientHello, and names a tunnel only in the tunnel form', async () => {
    const record = await realHello(tunnelServerName('alice.b_c-9'))
    expect(clientHelloServerName(record)).toBe('alice.b_c-9.tunnel.peerdir.invalid')
    expect(tunnelUsername(clientHelloServerName(record) ?? '')).toBe('alice.b_c-9')
    expect(clientHelloServerName(await realHello('example.com'))).toBe('example.com')
    for (const name of [
      'example.com',
      '.tunnel.peerdir.invalid',
      'a/b.tunnel.peerdir.invalid',
      `${'x'.repeat(65)}.tunnel.peerdir.invalid`,
    ])
      expect(tunnelUsername(name)).toBeUndefined()
  })

  it('is never thrown on: every cut of a real ClientHello, random changes to one, and lengths one too long', async () => {
    const record = await realHello(tunnelServerName('alice'))
    const said = (bytes: Buffer) => {
      const name = clientHelloServerName(bytes)
      expect(name === undefined || name === 'alice.tunnel.peerdir.invalid').toBe(true)
      return name
    }
    // Cut anywhere, with the record's and the handshake's lengths saying the cut is whole.
    for (let length = 9; length < record.length; length++) {
      const cut = Buffer.from(record.subarray(0, length))
      cut.writeUInt16BE(length - 5, 3)
      cut.writeUIntBE(length - 9, 6, 3)
      said(cut)
    }
    // Any bytes past the headers changed: every inner length the walk reads comes from the caller.
    for (let n = 0; n < 3000; n++) {
      const changed = Buffer.from(record)
      for (let k = 0; k <= n % 3; k++)
        changed[9 + Math.floor(Math.random() * (changed.length - 9))] = randomBytes(1)[0] as number
      const got = clientHelloServerName(changed) // the name's own bytes may have changed too
      expect(got === undefined || got.length <= changed.length).toBe(true)
    }
    // The name's and its extension's lengths one byte longer than what follows them.
    const name = record.indexOf('alice.tunnel.peerdir.invalid')
    const nameLonger = Buffer.from(record)
    nameLonger.writeUInt16BE(nameLonger.readUInt16BE(name - 2) + 0x1000, name - 2)
    expect(said(nameLonger)).toBeUndefined()
    const extensionLonger = Buffer.from(record)
    extensionLonger.writeUInt16BE(extensionLonger.readUInt16BE(name - 7) + 0x1000, name - 7)
    expect(said(extensionLonger)).toBeUndefined()
    expect(clientHelloServerName(record)).toBe('alice.tunnel.peerdir.invalid')
  })

  it('reads a record split across packets whole, puts plain HTTP back unread, and refuses an overlong record', async () => {
    const record = await realHello(tunnelServerName('bob'))
    const { port, read } = await firstRecords()
    const send = async (parts: Buffer[]) => {
      const socket = net.connect({ host: '127.0.0.1', port, noDelay: true })
      stops.push(() => void socket.destroy())
      await new Promise((resolve) => socket.once('connect', resolve))
      for (const part of parts) {
        socket.write(part)
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      while (read.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
      return (read.shift() as Promise<Read>).catch((err: Error) => err)
    }
    const split = await send([
      record.subarray(0, 3),
      record.subarray(3, 100),
      record.subarray(100),
      Buffer.from('next'),
    ])
    expect(split).not.toBeInstanceOf(Error)
    expect((split as Read).record?.equals(record)).toBe(true)
    expect(await (split as Read).after()).toBe('next')
    const plain = await send([Buffer.from('GET / HTTP/1.1\r\n\r\n')])
    expect((plain as Read).record).toBeUndefined()
    expect(await (plain as Read).after()).toBe('GET / HTTP/1.1\r\n\r\n')
    const overlong = await send([Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff])])
    expect(overlong).toBeInstanceOf(Error)
  })
})
