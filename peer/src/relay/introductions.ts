import http2 from 'node:http2'
import { type Endpoint, formatEndpoint, unmapped } from '../wire/hole-punch.ts'
import { INTRODUCE_PATH, PUNCH_PATH, PUNCH_TO_HEADER, relayedPathUsername } from '../wire/relay-protocol.ts'
import { type Request, type Response, refuse, writeHead } from './refusals.ts'
import type { RelayedPeers } from './relayed-peers.ts'

/** How long the peer has to take an introduction on its link. */
const ANSWER_MS = 5000
/** Introductions to one peer at once: each makes it dial, so a caller cannot keep it busy dialling. */
const PER_PEER = 4

/** What the relay counts of introductions, for its log and /metrics. */
export type IntroductionCounts = { asked: number; introduced: number; refused: number }

/**
 * Introductions (relay-protocol.ts): a caller asks from its punch port, the relay tells the peer over
 * its link where the caller is and the caller where the peer's link is, each address as the relay saw
 * it. Both then dial at once; the relay carries none of what follows.
 */
export class Introductions {
  readonly counts: IntroductionCounts = { asked: 0, introduced: 0, refused: 0 }
  readonly #peers: RelayedPeers
  readonly #log: (line: string) => void
  readonly #busy = new Map<string, number>()

  constructor(peers: RelayedPeers, log: (line: string) => void) {
    this.#peers = peers
    this.#log = log
  }

  static asks(req: Request): boolean {
    return (req.url ?? '').startsWith(INTRODUCE_PATH)
  }

  /** Answers `POST /v1/introduce/<username>` with the peer's endpoint, or a refusal saying why. Never throws. */
  answer(req: Request, res: Response) {
    this.counts.asked++
    this.#introduce(req, res).catch((err: unknown) => {
      this.counts.refused++
      if (!res.headersSent && !res.destroyed) {
        refuse(req, res, 'unavailable', err instanceof Error ? err.message : 'the introduction failed')
      }
    })
  }

  async #introduce(req: Request, res: Response) {
    const name = relayedPathUsername(`/relayed/${(req.url ?? '').slice(INTRODUCE_PATH.length).split('?')[0]}`)
    if (req.method !== 'POST' || !name) {
      this.counts.refused++
      return refuse(req, res, 'invalid_argument', `ask with POST ${INTRODUCE_PATH}<username>`)
    }
    const peer = this.#peers.get(name)
    const link = peer?.session.socket
    if (!peer || peer.session.closed || peer.session.destroyed || !link?.remoteAddress || !link.remotePort) {
      this.counts.refused++
      return refuse(req, res, 'unimplemented', `${name} is not connected to this relay`)
    }
    const busy = this.#busy.get(peer.username) ?? 0
    if (busy >= PER_PEER) {
      this.counts.refused++
      return refuse(
        req,
        res,
        'resource_exhausted',
        `${name} is being introduced to others; try again shortly`,
      )
    }
    const caller: Endpoint = {
      address: unmapped(req.socket.remoteAddress ?? ''),
      port: req.socket.remotePort ?? 0,
    }
    const target: Endpoint = { address: unmapped(link.remoteAddress), port: link.remotePort }
    this.#busy.set(peer.username, busy + 1)
    let roundTripMs: number
    try {
      roundTripMs = await ask(peer.session, caller)
    } finally {
      const left = (this.#busy.get(peer.username) ?? 1) - 1
      if (left > 0) this.#busy.set(peer.username, left)
      else this.#busy.delete(peer.username)
    }
    this.counts.introduced++
    this.#log(
      `introduced ${formatEndpoint(caller)} to ${peer.username} at ${formatEndpoint(target)} (link round trip ${roundTripMs.toFixed(1)} ms)`,
    )
    req.resume()
    const body = JSON.stringify({ ...target, roundTripMs })
    // Its length said, so a caller reads the body as it came (no chunked coding), then the close.
    const length = Buffer.byteLength(body)
    writeHead(res, 200, { 'content-type': 'application/json', 'content-length': length, connection: 'close' })
    res.end(body)
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
      return reject(new Error('the link to that peer is closing; try again'))
    }
    const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), ANSWER_MS)
    stream.on('error', () => {}) // seen as its close
    stream.once('response', (headers) => {
      const status = Number(headers[':status'])
      if (status === 200) resolve(performance.now() - started)
      else reject(new Error(`the peer did not take the introduction (${status})`))
      stream.close()
    })
    stream.once('close', () => {
      clearTimeout(timer)
      reject(new Error('the peer did not answer the introduction'))
    })
    stream.resume()
  })
}
