import { createHash, type KeyObject, type X509Certificate } from 'node:crypto'
import net from 'node:net'
import type { Duplex } from 'node:stream'
import tls from 'node:tls'
import type { SocketReader } from './h2-session.ts'
import { punchToRelayedPeer } from './punched-link.ts'
import { isRelayedUrl, relayedUsername } from './relay-protocol.ts'
import { connectThroughRelay, DeferredDuplex } from './relay-tunnel.ts'
import { tunnelServerName } from './tls-server-name.ts'

/**
 * How this peer reaches another: every dial (the Connect transports, the Download client, manifest
 * probes, uploads) opens its connection here. A source listed with a key is dialed over TLS and kept
 * only if the certificate it presents hashes to that key (its SubjectPublicKeyInfo's SHA-256): no CA,
 * no host name, so an address may change hands or pass through any pipe, and a man in the middle is
 * refused before a byte of HTTP (a request, a call token) is sent. A source listed without a key and an
 * http:// URL is dialed in plaintext; one with an https:// URL and no key (a CA-issued certificate
 * published by an older peer) is checked by the CAs as before. Never a plaintext retry.
 */

/** How a connection reaches its peer, as `peer get --json` reports each source's `link`. */
export type Route = 'direct' | 'punched' | 'relayed'

/** After a punch failed, or its link closed, a relayed peer is punched at again no sooner than this. */
const PUNCH_AGAIN_MS = 60_000

/** A peer as the directory lists it: its URL and the key to pin (null: plaintext). */
export type PeerEndpoint = { url: string; key: string | null }

/**
 * The byte stream under a peer connection: a TCP connection to the URL's host and port by default. A
 * relay's tunnel may stand in for it: TLS (and the key check) then runs end to end through the tunnel.
 */
export type Dial = (url: URL) => Duplex

/** The certificate presented is not the one the directory vouched for. */
export class KeyMismatchError extends Error {
  override readonly name = 'KeyMismatchError'
}

/** A key's fingerprint as the directory lists it: `sha256/` and the base64url SHA-256 of its SPKI. */
export function spkiFingerprint(key: KeyObject | X509Certificate): string {
  const publicKey = 'publicKey' in key ? key.publicKey : key
  const spki = publicKey.export({ type: 'spki', format: 'der' })
  return `sha256/${createHash('sha256').update(spki).digest('base64url')}`
}

const dialTcp = (url: URL, onread?: SocketReader) =>
  net.connect({
    host: bareHost(url),
    port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
    noDelay: true,
    ...(onread ? { onread } : {}),
  })

const bareHost = (url: URL) => url.hostname.replace(/^\[|\]$/g, '')

/**
 * One peer's connections: `open` makes a connection for an HTTP/2 (or HTTP/1.1) client, synchronously
 * as http2.connect's createConnection wants it. `refusal` remembers a key mismatch, so a caller reports
 * it instead of the transport's vaguer error.
 */
export class PeerConnection {
  readonly url: URL
  readonly key: string | null
  readonly #dial: Dial
  #refusal: KeyMismatchError | undefined
  /** A direct link punched to a relayed peer (punchedLink), key checked; `taken` once a session has it. */
  #punched: { socket: tls.TLSSocket; taken: boolean } | undefined
  #punching = false
  #punchAgainAt = 0
  #punchError = ''
  #closed = false
  readonly #onPunched = new Set<() => void>()

  constructor(endpoint: PeerEndpoint, dial: Dial = dialTcp) {
    this.url = new URL(endpoint.url)
    this.key = endpoint.key
    this.#dial = dial
  }

  get refusal(): KeyMismatchError | undefined {
    return this.#refusal
  }

  /** How connections for bytes reach the peer now: a relayed one moves to `punched` once a punch succeeds. */
  get route(): Route {
    if (!isRelayedUrl(this.url.href)) return 'direct'
    return this.#punched && !this.#punched.socket.destroyed ? 'punched' : 'relayed'
  }

  /** Why the last punch failed (empty when none did). */
  get punchError(): string {
    return this.#punchError
  }

  /** Told when a punched link comes up, so whoever carries bytes over the relay can move them to it. */
  onPunched(listener: () => void): () => void {
    this.#onPunched.add(listener)
    return () => this.#onPunched.delete(listener)
  }

  /**
   * Starts punching a direct link to a relayed peer whose key is listed (punched-link.ts), in the
   * background: calls go on through the relay meanwhile. Not while one is up or under way, nor soon
   * after one failed (a symmetric NAT fails every time); never to a peer without a key, since a punched
   * link is trusted only for the key it presents. `PEERDIR_PUNCH=off` turns punching off. Resolves
   * when this attempt ends (at once when none starts); never rejects.
   */
  punch(): Promise<void> {
    this.#forgetLostPunch()
    if (this.route !== 'relayed' || this.key === null || this.#punching || this.#closed)
      return Promise.resolve()
    if (Date.now() < this.#punchAgainAt || process.env.PEERDIR_PUNCH === 'off') return Promise.resolve()
    this.#punching = true
    return punchToRelayedPeer(this.url)
      .then((socket) => {
        // Its errors end it (seen as its close below), whether or not a session has taken it yet.
        socket.on('error', () => socket.destroy())
        if (this.#closed) return void socket.destroy()
        const presented = presentedKey(socket)
        if (presented !== this.key) {
          socket.destroy()
          throw new KeyMismatchError(
            `key mismatch at the punched address: ${presented} presented, ${this.key} listed`,
          )
        }
        const punched = { socket, taken: false }
        this.#punched = punched
        this.#punchError = ''
        socket.once('close', () => this.#forgetLostPunch())
        for (const listener of this.#onPunched) listener()
      })
      .catch((err: unknown) => {
        this.#punchError = err instanceof Error ? err.message : String(err)
        this.#punchAgainAt = Date.now() + PUNCH_AGAIN_MS
      })
      .finally(() => {
        this.#punching = false
      })
  }

  /** A punched link that ended (its close may not have been told yet) is forgotten, and punched again later. */
  #forgetLostPunch() {
    if (!this.#punched?.socket.destroyed) return
    this.#punched = undefined
    this.#punchAgainAt = Date.now() + PUNCH_AGAIN_MS
  }

  /**
   * A connection for a transfer's bytes: the punched link while it is up and no session has it yet,
   * else a connection as `open` makes it (and, to a relayed peer, a punch tried in the background).
   * `onread`: how a connection made here is read (one made already, a punched link or a relay's
   * tunnel without a key, is read by its 'data' events).
   */
  openForBytes(onread?: SocketReader): net.Socket {
    const punched = this.#punched
    if (punched && !punched.taken && !punched.socket.destroyed) {
      punched.taken = true
      return punched.socket
    }
    void this.punch()
    return this.open(['h2'], onread)
  }

  /** Whether `socket` is the punched link (openForBytes handed it out). */
  isPunched(socket: net.Socket): boolean {
    return this.#punched?.socket === socket
  }

  /** Drops the punched link, if any (it failed or stalled): the relay carries until a punch succeeds again. */
  abandonPunched() {
    this.#punched?.socket.destroy()
    this.#forgetLostPunch()
  }

  /** Drops a punched link no session took, and one a punch still under way makes. */
  close() {
    this.#closed = true
    if (this.#punched && !this.#punched.taken) this.#punched.socket.destroy()
  }

  /** A new connection (TLS when the URL is https://), `alpn` offered inside TLS, read by `onread` if given. */
  open(alpn: string[] = ['h2'], onread?: SocketReader): net.Socket {
    if (isRelayedUrl(this.url.href)) return this.#throughRelay(alpn, onread)
    const ownDial = this.#dial === dialTcp
    if (this.url.protocol !== 'https:')
      return (ownDial ? dialTcp(this.url, onread) : this.#dial(this.url)) as net.Socket
    const host = bareHost(this.url)
    const underneath = ownDial ? undefined : this.#dial(this.url)
    return this.#secure(alpn, underneath, net.isIP(host) ? undefined : host, undefined, onread)
  }

  /**
   * A relayed peer: a tunnel through its relay (the URL's scheme is the relay's), then TLS to the peer
   * inside it, pinned to the listed key, whatever the relay says the peer speaks: a relay cannot talk a
   * caller down to plaintext. A peer listed without a key is spoken to as the relay says it serves
   * (plaintext, or TLS checked by the CAs, relay-tunnel.ts).
   */
  #throughRelay(alpn: string[], onread: SocketReader | undefined): net.Socket {
    if (this.key === null) return new DeferredDuplex(connectThroughRelay(this.url)) as unknown as net.Socket
    // TLS to the peer straight from this socket to the relay's port: the ClientHello's server name asks
    // the relay for the tunnel (relay-protocol.ts), so nothing but the kernel's socket is under TLS.
    const username = relayedUsername(this.url.href) ?? ''
    const port = Number(this.url.port || (this.url.protocol === 'https:' ? 443 : 80))
    return this.#secure(alpn, undefined, tunnelServerName(username), port, onread)
  }

  #secure(
    alpn: string[],
    underneath: Duplex | undefined,
    servername: string | undefined,
    port = Number(this.url.port || 443),
    onread?: SocketReader,
  ): net.Socket {
    const host = bareHost(this.url)
    const pinned = this.key !== null
    const socket = tls.connect({
      // `onread` only on a socket of its own: one it wraps is read as a stream.
      ...(underneath ? { socket: underneath } : { host, port, ...(onread ? { onread } : {}) }),
      servername,
      ALPNProtocols: alpn,
      // Pinned: the key decides, not a CA (a peer's certificate is self-signed, and its address may
      // name nobody). Unpinned https:// is checked by the CAs and the host name, as before.
      rejectUnauthorized: !pinned,
    })
    socket.setNoDelay(true)
    if (pinned) this.#pin(socket)
    return socket
  }

  /** Why a call failed: the key mismatch if that was it, else the call's own error. */
  explain(err: unknown): unknown {
    return this.#refusal ?? err
  }

  /**
   * Checks the key when the handshake completes, before 'secureConnect' reaches anyone else: the HTTP
   * client starts (writes its preface, then requests and tokens) on that event, and Node offers no
   * verify callback for a certificate no CA signed. A mismatch ends the connection instead of the event
   * (ending it from a listener of its own would be too late: Node's HTTP/2 client asserts on a socket
   * destroyed under it), and the client sees the connection fail with the refusal.
   */
  #pin(socket: tls.TLSSocket) {
    const emit = socket.emit.bind(socket)
    socket.emit = (event: string | symbol, ...args: unknown[]): boolean => {
      if (event === 'secureConnect') {
        const refusal = this.#check(socket)
        if (refusal) {
          socket.destroy(refusal)
          return false
        }
      }
      return emit(event, ...args)
    }
  }

  #check(socket: tls.TLSSocket): KeyMismatchError | undefined {
    const presented = presentedKey(socket)
    if (presented === this.key) return undefined
    this.#refusal = new KeyMismatchError(
      `key mismatch: ${this.url.host} presented ${presented}, the directory lists ${this.key}`,
    )
    return this.#refusal
  }
}

/** The fingerprint of the key a TLS connection's other end presented. */
function presentedKey(socket: tls.TLSSocket): string {
  const certificate = socket.getPeerX509Certificate()
  return certificate ? spkiFingerprint(certificate) : 'no certificate'
}
