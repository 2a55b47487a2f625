import { once } from 'node:events'
import type net from 'node:net'
import { Duplex } from 'node:stream'
import tls from 'node:tls'
import { answerStatus, readAnswerHead } from './http1-answer.ts'
import { dialRelayBound } from './relay-dial.ts'
import { INNER_HEADER, type Inner, TUNNEL_PROTOCOL } from './relay-protocol.ts'

const DIAL_TIMEOUT_MS = 10_000

/** A tunnel to a relayed peer: an opaque byte stream to its port (paused), and what that port speaks. */
export type Tunnel = { socket: net.Socket; inner: Inner }

/**
 * Asks the relay of a relayed URL (`<relay>/relayed/<username>`) for a tunnel to that peer (see
 * relay-protocol.ts): resolves once the relay has switched the connection over, or fails with the
 * relay's one-line reason.
 */
export async function openTunnel(relayedUrl: URL): Promise<Tunnel> {
  let socket: net.Socket
  try {
    socket = await dialRelayBound(relayedUrl, 'http/1.1', DIAL_TIMEOUT_MS, 'the relay did not answer in time')
  } catch (err) {
    throw err instanceof Error && 'code' in err
      ? new Error(`cannot reach the relay (${String(err.code)})`)
      : err
  }
  try {
    const path = relayedUrl.pathname.replace(/\/+$/, '')
    socket.write(
      `GET ${path} HTTP/1.1\r\nhost: ${relayedUrl.host}\r\nconnection: upgrade\r\nupgrade: ${TUNNEL_PROTOCOL}\r\n\r\n`,
    )
    const { head, rest } = await readAnswerHead(socket)
    const status = answerStatus(head)
    if (status !== 101) {
      const reason = rest.toString('utf8').trim().split('\n')[0]?.slice(0, 300)
      throw new Error(
        `the relay refused a tunnel (${status || 'not HTTP'}): ${reason || head.split('\r\n')[0]}`,
      )
    }
    const inner = new RegExp(`^${INNER_HEADER}:\\s*(tls|plaintext)\\s*$`, 'im').exec(head)?.[1] as Inner
    if (!inner) throw new Error(`the relay's tunnel answer says nothing of what the peer speaks`)
    socket.setTimeout(0)
    if (rest.length > 0) socket.unshift(rest)
    return { socket, inner }
  } catch (err) {
    socket.destroy()
    throw err instanceof Error && 'code' in err
      ? new Error(`cannot reach the relay (${String(err.code)})`)
      : err
  }
}

/**
 * A connection to a relayed peer, made as its port would be dialled: a tunnel through the relay, then
 * TLS to the peer inside it when the peer serves TLS (end to end: the relay carries ciphertext), else
 * the tunnel itself. The one place a relayed source is dialled, so a pinned TLS connect plugs in here.
 * Until listings carry keys the peer's certificate is checked against the trusted CAs but no host name:
 * the relayed URL names the relay, not the peer.
 */
export async function connectThroughRelay(relayedUrl: URL): Promise<Duplex> {
  const { socket, inner } = await openTunnel(relayedUrl)
  if (inner === 'plaintext') return socket
  const secure = tls.connect({ socket, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined })
  try {
    await once(secure, 'secureConnect')
  } catch (err) {
    secure.destroy()
    throw err
  }
  return secure
}

/**
 * A duplex at once, for clients that want their connection synchronously (http2.connect's
 * createConnection), over one that is still being made: writes wait for it, reads come from it, and a
 * failure to make it destroys this with its error.
 */
export class DeferredDuplex extends Duplex {
  #target: Duplex | undefined
  readonly #ready: Promise<Duplex>

  constructor(making: Promise<Duplex>) {
    super()
    this.#ready = making
    making.then(
      (target) => {
        if (this.destroyed) return void target.destroy()
        this.#target = target
        target.on('data', (chunk: Buffer) => {
          if (!this.push(chunk)) target.pause()
        })
        let ended = false
        target.once('end', () => {
          ended = true
          this.push(null)
        })
        target.once('error', (err) => this.destroy(err))
        // A target that ended and closed has handed over all it had: this closes once its reader has
        // had those bytes and the end (destroyed at once, their tail would be lost: "Premature close").
        target.once('close', () => {
          if (!ended || this.readableEnded) this.destroy()
          else this.once('end', () => this.destroy())
        })
        target.resume() // a tunnel comes paused, its first bytes maybe unshifted back
      },
      (err: Error) => this.destroy(err),
    )
    // Seen by the caller through this duplex; the promise itself must not go unhandled.
    making.catch(() => {})
  }

  override _read() {
    this.#target?.resume()
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void) {
    const write = (target: Duplex) => {
      if (target.write(chunk)) done()
      else target.once('drain', () => done())
    }
    if (this.#target) write(this.#target)
    else this.#ready.then(write, (err: Error) => done(err))
  }

  override _final(done: (err?: Error | null) => void) {
    this.#ready.then(
      (target) => target.end(() => done()),
      (err: Error) => done(err),
    )
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void) {
    this.#target?.destroy()
    done(err)
  }
}
