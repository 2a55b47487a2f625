import http2 from 'node:http2'
import net from 'node:net'
import tls from 'node:tls'

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
 * calls on one connection without waiting for any answer and never sends a body. Resolves, with how
 * many streams the server refused (RST_STREAM REFUSED_STREAM) or reset otherwise and whether it ended
 * the connection (GOAWAY), once it has answered everything sent: a PING after the streams, and a second
 * PING sent on the first one's ACK (the ACK may leave in the same write as the resets queued with it,
 * ahead of them; the second is read only after that whole write), or once it closed the connection.
 */
export function rawStreamFlood(port: number, streams: number) {
  return new Promise<{ refused: number; reset: number; goaway: boolean; close: () => void }>((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    socket.on('error', () => {})
    let received = Buffer.alloc(0)
    const result = { refused: 0, reset: 0, goaway: false, close: () => socket.destroy() }
    const ping = (round: number) => frame(0x6, 0, 0, Buffer.from(`flood-${round}`.padEnd(8)))
    socket.once('close', () => resolve(result))
    socket.on('data', (data) => {
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
        if (type === 0x6 && ((received[4] ?? 0) & 0x1) === 0x1) {
          const round = received.toString('latin1', 9, 17).trim()
          if (round === 'flood-1') socket.write(ping(2))
          if (round === 'flood-2') resolve(result)
        }
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
      frames.push(ping(1))
      socket.write(Buffer.concat(frames))
    })
  })
}

/** The client's half of the HTTP/2 connection preface: the fixed string, then its SETTINGS frame. */
const PREFACE = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(0x4, 0, 0)])

type Held = { close: () => void; closed: Promise<void>; isClosed: () => boolean }

/** A raw connection from `localAddress` that sends the HTTP/2 preface and nothing more. */
export function prefaceOnly(port: number, localAddress: string): Promise<Held> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress })
    const closed = new Promise<void>((done) => socket.once('close', () => done()))
    socket.once('error', reject)
    socket.resume()
    socket.once('connect', () => {
      socket.on('error', () => {})
      socket.write(PREFACE)
      resolve({ close: () => socket.destroy(), closed, isClosed: () => socket.destroyed })
    })
  })
}

/**
 * A real HTTP/2 session from `localAddress` (preface, SETTINGS and their ACKs) that opens no stream; or,
 * with `call: 'answered'`, one that makes a single call, waits for its answer, then sits idle. With `ca`,
 * over TLS to a server whose certificate that CA signed.
 */
export function sessionOnly(
  port: number,
  localAddress: string,
  options: { call?: 'answered'; ca?: Buffer } = {},
): Promise<Held> {
  const { ca } = options
  const tcp = () => net.connect({ host: '127.0.0.1', port, localAddress })
  return new Promise((resolve, reject) => {
    const session = http2.connect(`${ca ? 'https' : 'http'}://127.0.0.1:${port}`, {
      createConnection: () =>
        ca ? tls.connect({ host: '127.0.0.1', socket: tcp(), ca, ALPNProtocols: ['h2'] }) : tcp(),
    })
    const closed = new Promise<void>((done) => session.once('close', () => done()))
    session.once('error', reject)
    session.once('connect', () => {
      session.on('error', () => {})
      const held = { close: () => session.destroy(), closed, isClosed: () => session.destroyed }
      if (!options.call) return resolve(held)
      const stream = session.request({ ':path': '/' })
      let answered = false
      stream.once('response', () => {
        answered = true
      })
      stream.on('error', reject)
      stream.resume()
      stream.once('close', () => (answered ? resolve(held) : reject(new Error('the call got no answer'))))
      stream.end()
    })
  })
}

/**
 * Keeps `count` connections made by `open` up, as an attacker repeating its flood would: each one the
 * server closes is replaced, one at a time (so the churn stays bounded). `held()` says how many are
 * open now, `replaced` how many the server has closed so far.
 */
export async function heldFlood(count: number, open: (i: number) => Promise<Held>) {
  let stopped = false
  let held = 0
  const stats = { replaced: 0 }
  const queue: number[] = []
  let pumping = false
  const keep = async (i: number) => {
    const connection = await open(i)
    held++
    connections.add(connection)
    void connection.closed.then(() => {
      held--
      connections.delete(connection)
      if (stopped) return
      stats.replaced++
      queue.push(i)
      void pump()
    })
  }
  const pump = async () => {
    if (pumping) return
    pumping = true
    for (let i = queue.shift(); i !== undefined && !stopped; i = queue.shift()) {
      await keep(i).catch(() => queue.push(i))
      await new Promise((r) => setTimeout(r, REPLACE_PAUSE_MS))
    }
    pumping = false
  }
  const connections = new Set<Held>()
  // A connection refused (or reset before it was told it connected) is retried by the pump.
  await Promise.all(Array.from({ length: count }, (_, i) => keep(i).catch(() => queue.push(i))))
  void pump()
  return {
    stats,
    held: () => held,
    close: () => {
      stopped = true
      for (const connection of connections) connection.close()
    },
  }
}

/** Between two replacements: at most a hundred new connections a second, whatever the server does. */
const REPLACE_PAUSE_MS = 10
