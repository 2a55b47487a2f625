import net from 'node:net'

/**
 * `count` raw TCP connections to 127.0.0.1:`port` that never send a byte (a slowloris). `open()` says
 * how many the server has not closed.
 */
export async function floodSockets(port: number, count: number) {
  const sockets: net.Socket[] = []
  let failed = 0
  await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<void>((resolve) => {
          const socket = net.connect({ host: '127.0.0.1', port })
          socket.on('error', () => {})
          // Reading (it never writes): a paused socket would not notice the server closing it.
          socket.resume()
          // A keepalive probe after a second of silence (no data: the daemon still hears nothing). With
          // the accept queue full, the kernel may give up on a half-made connection (SYN-ACK retries, about
          // a minute) that the client already counts as open; sending nothing, the client would never
          // learn it, and wait for a close that cannot come. The probe gets that connection its reset.
          socket.setKeepAlive(true, 1000)
          socket.once('connect', () => {
            sockets.push(socket)
            resolve()
          })
          socket.once('close', () => {
            if (!sockets.includes(socket)) failed++
            resolve()
          })
        }),
    ),
  )
  return {
    connected: sockets.length,
    failed,
    open: () => sockets.filter((s) => !s.destroyed && !s.readableEnded).length,
    close: () => {
      for (const socket of sockets) socket.destroy()
    },
  }
}

/** One HTTP/2 frame: 9-byte header, then the payload. */
const frame = (type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)) => {
  const header = Buffer.alloc(9)
  header.writeUIntBE(payload.length, 0, 3)
  header[3] = type
  header[4] = flags
  header.writeUInt32BE(streamId, 5)
  return Buffer.concat([header, payload])
}

/** HPACK literal without indexing: a static-table name index (4-bit prefix) or a new name (0), then the value. */
const literal = (nameIndex: number, value: string, name?: string) => {
  const parts: Buffer[] = []
  if (name) parts.push(Buffer.from([0x00, name.length]), Buffer.from(name))
  else parts.push(Buffer.from(nameIndex < 15 ? [nameIndex] : [0x0f, nameIndex - 15]))
  parts.push(Buffer.from([value.length]), Buffer.from(value))
  return Buffer.concat(parts)
}

/**
 * An HTTP/2 client that ignores the server's SETTINGS, as an attacker would: opens `streams` Download
 * calls on one connection without waiting for any answer and never sends a body. Resolves once the
 * server has gone quiet for `quietMs` with how many streams it refused (RST_STREAM REFUSED_STREAM) or
 * reset otherwise, and whether it ended the connection (GOAWAY).
 */
export function rawStreamFlood(port: number, streams: number, quietMs = 750) {
  return new Promise<{ refused: number; reset: number; goaway: boolean; close: () => void }>((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    socket.on('error', () => {})
    let received = Buffer.alloc(0)
    const result = { refused: 0, reset: 0, goaway: false, close: () => socket.destroy() }
    let quiet: NodeJS.Timeout | undefined
    const settleLater = () => {
      clearTimeout(quiet)
      quiet = setTimeout(() => resolve(result), quietMs)
    }
    socket.on('data', (data) => {
      settleLater()
      received = Buffer.concat([received, data])
      while (received.length >= 9) {
        const length = received.readUIntBE(0, 3)
        if (received.length < 9 + length) break
        const type = received[3]
        if (type === 0x3) {
          if (received.readUInt32BE(9) === 0x7) result.refused++
          else result.reset++
        }
        if (type === 0x7) result.goaway = true
        if (type === 0x4 && ((received[4] ?? 0) & 0x1) === 0) socket.write(frame(0x4, 0x1, 0)) // ACK
        received = received.subarray(9 + length)
      }
    })
    socket.once('connect', () => {
      const block = Buffer.concat([
        Buffer.from([0x83, 0x86]), // :method POST, :scheme http
        literal(4, '/peerdir.v1.PeerService/Download'),
        literal(1, `127.0.0.1:${port}`),
        literal(31, 'application/grpc'),
        literal(0, 'trailers', 'te'),
      ])
      const frames = [Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(0x4, 0, 0)]
      for (let i = 0; i < streams; i++) frames.push(frame(0x1, 0x4, 2 * i + 1, block))
      socket.write(Buffer.concat(frames))
      settleLater()
    })
  })
}
