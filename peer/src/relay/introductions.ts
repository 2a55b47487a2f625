import http2 from 'node:http2'
import { addressKey } from '../wire/connection-slots.ts'
import { type Endpoint, formatEndpoint, PUNCH_MS, unmapped } from '../wire/hole-punch.ts'
import { INTRODUCE_PATH, PUNCH_PATH, PUNCH_TO_HEADER, relayedPathUsername } from '../wire/relay-protocol.ts'
import { type Request, type Response, refuse, writeHead } from './refusals.ts'
import type { RelayedPeers } from './relayed-peers.ts'

/** How long the peer has to take an introduction on its link. */
const ANSWER_MS = 5000
/**
 * Introductions to one peer within a punch's time (PUNCH_MS from each): each makes it dial, so callers
 * cannot keep it busy dialling.
 */
const PER_PEER = 4
/**
 * Introductions one caller address (an IPv4 address, an IPv6 /64) may ask for a minute, to any peers:
 * a downloader asks once per relayed source and download, and again at most once a minute.
 */
const PER_CALLER_MINUTE = 60
/** Past this many caller addresses counted, those whose minute is over are forgotten. */
const CALLERS_KEPT = 10_000

/** What the relay counts of introductions, for its log and /metrics. */
export type IntroductionCounts = { introduced: number; refused: number }

class Refused extends Error {
  readonly code: 'invalid_argument' | 'unimplemented' | 'resource_exhausted' | 'unavailable'
  constructor(code: Refused['code'], message: string) {
    super(message)
    this.code = code
  }
}

/**
 * Introductions (relay-protocol.ts): a caller asks from its punch port, the relay tells the peer over
 * its link where the caller is and the caller where the peer's link is, each address as the relay saw
 * it. Both then dial at once; the relay carries none of what follows.
 */
export class Introductions {
  readonly counts: IntroductionCounts = { introduced: 0, refused: 0 }
  readonly #peers: RelayedPeers
  readonly #log: (line: string) => void
  readonly #busy = new Map<string, number>()
  /** Per caller address: when its minute began and how many it asked in it. */
  readonly #callers = new Map<string, { since: number; asked: number }>()
  #sweptAt = 0

  constructor(peers: RelayedPeers, log: (line: string) => void) {
    this.#peers = peers
    this.#log = log
  }

  static asks(req: Request): boolean {
    return (req.url ?? '').startsWith(INTRODUCE_PATH)
  }

  /** Answers `POST /v1/introduce/<username>` with the peer's endpoint, or a refusal saying why. Never throws. */
  answer(req: Request, res: Response) {
    this.#introduce(req, res).catch((err: unknown) => {
      this.counts.refused++
      if (res.headersSent || res.destroyed) return
      const refused = err instanceof Refused ? err : new Refused('unavailable', 'the introduction failed')
      refuse(req, res, refused.code, refused.message)
    })
  }

  async #introduce(req: Request, res: Response) {
    const asked = (req.url ?? '').slice(INTRODUCE_PATH.length).split('?')[0]
    const name = relayedPathUsername(`/relayed/${asked}`)
    if (req.method !== 'POST' || !name) {
      throw new Refused('invalid_argument', `ask with POST ${INTRODUCE_PATH}<username>`)
    }
    const peer = this.#peers.get(name)
    const link = peer?.session.socket
    if (!peer || peer.session.closed || peer.session.destroyed || !link?.remoteAddress || !link.remotePort) {
      throw new Refused('unimplemented', `${name} is not connected to this relay`)
    }
    const caller: Endpoint = {
      address: unmapped(req.socket.remoteAddress ?? ''),
      port: req.socket.remotePort ?? 0,
    }
    if (!this.#callerMayAsk(caller.address)) {
      throw new Refused(
        'resource_exhausted',
        `at most ${PER_CALLER_MINUTE} introductions a minute from one address`,
      )
    }
    const busy = this.#busy.get(peer.username) ?? 0
    if (busy >= PER_PEER) {
      throw new Refused('resource_exhausted', `${name} is being introduced to others; try again shortly`)
    }
    const target: Endpoint = { address: unmapped(link.remoteAddress), port: link.remotePort }
    // Held for the punch's whole time, not only the link's round trip: the peer dials after answering.
    this.#busy.set(peer.username, busy + 1)
    setTimeout(() => {
      const left = (this.#busy.get(peer.username) ?? 1) - 1
      if (left > 0) this.#busy.set(peer.username, left)
      else this.#busy.delete(peer.username)
    }, PUNCH_MS).unref()
    const roundTripMs = await ask(peer.session, caller)
    this.counts.introduced++
    this.#log(
      `introduced ${formatEndpoint(caller)} to ${peer.username} at ${formatEndpoint(target)} (link round trip ${roundTripMs.toFixed(1)} ms)`,
    )
    req.resume()
    const body = JSON.stringify({ ...target, roundTripMs })
    // Its length said, so a caller reads the body as it came (no chunked coding); over HTTP/1.1 the
    // connection then closes (the caller's punch port is done with the relay).
    const length = Buffer.byteLength(body)
    const close = req.httpVersionMajor === 1 ? { connection: 'close' } : {}
    writeHead(res, 200, { 'content-type': 'application/json', 'content-length': length, ...close })
    res.end(body)
  }

  /** Counts an introduction against its caller's address: false past its share of this minute. */
  #callerMayAsk(address: string): boolean {
    const now = Date.now()
    if (this.#callers.size > CALLERS_KEPT && now - this.#sweptAt > 1000) {
      this.#sweptAt = now
      for (const [key, counted] of this.#callers) if (now - counted.since > 60_000) this.#callers.delete(key)
    }
    const key = addressKey(address)
    const counted = this.#callers.get(key)
    // Every place taken by an address still inside its minute: newcomers wait (tunnels go on).
    if (!counted && this.#callers.size >= 2 * CALLERS_KEPT) return false
    if (!counted || now - counted.since > 60_000) {
      this.#callers.set(key, { since: now, asked: 1 })
      return true
    }
    counted.asked++
    return counted.asked <= PER_CALLER_MINUTE
  }
}

/** Tells the peer where to dial; resolves with the link's round trip once it took the introduction. */
function ask(session: http2.ClientHttp2Session, caller: Endpoint): Promise<number> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    let stream: http2.ClientHttp2Stream
    try {
      stream = session.request(
        { ':method': 'POST', ':path': PUNCH_PATH, [PUNCH_TO_HEADER]: formatEndpoint(caller) },
        { endStream: true },
      )
    } catch {
      return reject(new Refused('unavailable', 'the link to that peer is closing; try again'))
    }
    const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), ANSWER_MS)
    stream.on('error', () => {}) // seen as its close
    stream.once('response', (headers) => {
      const status = Number(headers[':status'])
      if (status === 200) resolve(performance.now() - started)
      else reject(new Refused('unavailable', `the peer did not take the introduction (${status})`))
      stream.close()
    })
    stream.once('close', () => {
      clearTimeout(timer)
      reject(new Refused('unavailable', 'the peer did not answer the introduction'))
    })
    stream.resume()
  })
}
