import type net from 'node:net'

/**
 * The server name a caller puts in its TLS ClientHello to ask a relay for a tunnel to `username`
 * (relay-protocol.ts). `.invalid` is reserved: no DNS name can ever be one of these.
 */
export const tunnelServerName = (username: string) => `${username}${TUNNEL_NAME_SUFFIX}`
const TUNNEL_NAME_SUFFIX = '.tunnel.peerdir.invalid'
const USERNAME = /^[A-Za-z0-9._-]{1,64}$/

/** The username a server name asks a tunnel to, if it is one of tunnelServerName's. */
export function tunnelUsername(serverName: string): string | undefined {
  if (!serverName.endsWith(TUNNEL_NAME_SUFFIX)) return undefined
  const username = serverName.slice(0, -TUNNEL_NAME_SUFFIX.length)
  return USERNAME.test(username) ? username : undefined
}

const HANDSHAKE_RECORD = 0x16
const CLIENT_HELLO = 0x01
const SERVER_NAME_EXTENSION = 0x0000
const HOST_NAME = 0x00
/** A TLS record's most plaintext bytes; a ClientHello is read only from the first record. */
const MAX_RECORD = 16_384

/**
 * The first TLS record of a connection that opens with one, read whole and put back: what it holds
 * (`record`) is handed on with the connection, so the TLS server (here, or at the end of a tunnel) reads
 * it as sent. Resolves undefined, bytes put back too, for a connection that opens otherwise.
 */
export function readFirstRecord(socket: net.Socket, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = []
    let length = 0
    const timer = setTimeout(() => done(new Error('no TLS record in time')), timeoutMs)
    const done = (err?: Error, record?: Buffer) => {
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('close', onClose)
      socket.pause()
      const read = Buffer.concat(parts, length)
      if (err) return reject(err)
      if (!record && read.length > 0) socket.unshift(read)
      resolve(record)
    }
    const onClose = () => done(new Error('closed before a TLS record'))
    const onData = (chunk: Buffer) => {
      parts.push(chunk)
      length += chunk.length
      if (length < 5) return
      const head = parts.length === 1 ? chunk : Buffer.concat(parts, length)
      if (head[0] !== HANDSHAKE_RECORD) return done()
      const size = head.readUInt16BE(3)
      if (size > MAX_RECORD) return done(new Error('a TLS record longer than TLS allows'))
      if (length >= 5 + size) done(undefined, Buffer.concat(parts, length))
    }
    socket.on('data', onData)
    socket.once('close', onClose)
  })
}

/**
 * The host name a ClientHello (the whole first record, header included) asks for in its server_name
 * extension; undefined when the record holds none or is not a ClientHello. Every length is checked
 * against what is there: a caller's bytes are never trusted to be well formed.
 */
export function clientHelloServerName(record: Buffer): string | undefined {
  if (record.length < 9 || record[0] !== HANDSHAKE_RECORD || record[5] !== CLIENT_HELLO) return undefined
  // The whole ClientHello within the record, and every part within the ClientHello.
  const end = 9 + record.readUIntBE(6, 3)
  if (end > 5 + record.readUInt16BE(3) || end > record.length) return undefined
  let at = 9 + 2 + 32 // client version, random
  const skip = (lengthBytes: 1 | 2) => {
    if (at + lengthBytes > end) return false
    at += lengthBytes + (lengthBytes === 1 ? (record[at] as number) : record.readUInt16BE(at))
    return at <= end
  }
  if (!skip(1) || !skip(2) || !skip(1)) return undefined // session id, cipher suites, compression
  if (at + 2 > end) return undefined
  const extensionsEnd = at + 2 + record.readUInt16BE(at)
  if (extensionsEnd > end) return undefined
  at += 2
  while (at + 4 <= extensionsEnd) {
    const type = record.readUInt16BE(at)
    const size = record.readUInt16BE(at + 2)
    const data = at + 4
    at = data + size
    if (at > extensionsEnd) return undefined
    if (type !== SERVER_NAME_EXTENSION) continue
    // server_name_list: its length, then entries of a type byte and a length-prefixed name.
    let entry = data + 2
    while (entry + 3 <= at) {
      const nameType = record[entry]
      const nameLength = record.readUInt16BE(entry + 1)
      const name = entry + 3
      if (name + nameLength > at) return undefined
      if (nameType === HOST_NAME) return record.toString('latin1', name, name + nameLength)
      entry = name + nameLength
    }
    return undefined
  }
  return undefined
}
