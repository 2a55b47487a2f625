import http from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'
import { networkInterfaces } from 'node:os'
import type { Duplex } from 'node:stream'
import { DirectoryClient } from '../wire/directory-client.ts'
import { directoryKeys } from '../wire/directory-tokens.ts'
import { byHttpVersion, type Dispatch, FIRST_BYTES_MS, ListeningPort } from '../wire/listening-port.ts'
import { TUNNEL_PROTOCOL } from '../wire/relay-protocol.ts'
import { clientHelloServerName, readFirstRecord, tunnelUsername } from '../wire/tls-server-name.ts'
import { MAX_STREAM_WINDOW, WindowBudget } from './buffer-budget.ts'
import { type Limits, RELAY_DEFAULTS } from './defaults.ts'
import { type IntroductionCounts, Introductions } from './introductions.ts'
import { acceptLink, adoptLink, type LinkOptions } from './links.ts'
import { refuse, writeHead } from './refusals.ts'
import { type Registrant, registrationVerifier } from './registration-token.ts'
import { type Caps, RelayedPeers } from './relayed-peers.ts'
import { acceptTlsTunnel, acceptTunnel, type TunnelOptions } from './tunnel.ts'

/** Limits left out take `peer relay`'s defaults; `peerRate` undefined means no rate cap. */
export type RelayOptions = Partial<Omit<Caps, 'peerRate'> & Limits> &
  Pick<Caps, 'peerRate'> & {
    port: number
    host: string
    directoryUrl: string
    /** The relay's own URL as peers dial it, when that is not what it listens on (a name, a forwarded port). */
    publicUrl?: string
    /** Serve TLS: callers and registering peers alike then dial https://. */
    tls?: { certPath: string; keyPath: string }
    log: (line: string) => void
  }

export type Relay = {
  port: number
  peers: RelayedPeers
  /** The origins relay tokens must name to register here. */
  origins: ReadonlySet<string>
  /** Carries tunnels to `registrant` over a session the caller made (what a registration ends in). */
  adopt: (registrant: Registrant, session: http2.ClientHttp2Session, address: string) => void
  stop: () => Promise<void>
}

/** Requests per HTTP/2 connection: only /healthz and refusals are answered over one. */
const STREAMS_PER_CONNECTION = 16

/**
 * `peer relay`: one port where daemons that nobody can dial register (an HTTP/1.1 upgrade, then the
 * relay speaks HTTP/2 to them over the connection they opened) and where callers reach them through
 * tunnels (another HTTP/1.1 upgrade, carried as a CONNECT stream on the peer's link: the relay reads
 * none of it). Every connection takes a slot as on a peer's port (caps per address, silent ones
 * closed), so a flood cannot starve the peers it carries.
 */
export async function startRelay(given: RelayOptions): Promise<Relay> {
  const options = {
    ...given,
    maxPeers: given.maxPeers ?? RELAY_DEFAULTS.maxPeers,
    maxPeersPerAddress: given.maxPeersPerAddress ?? RELAY_DEFAULTS.maxPeersPerAddress,
    maxStreamsPerPeer: given.maxStreamsPerPeer ?? RELAY_DEFAULTS.maxStreamsPerPeer,
    maxBufferBytes: given.maxBufferBytes ?? RELAY_DEFAULTS.maxBufferBytes,
    minCallRate: given.minCallRate ?? RELAY_DEFAULTS.minCallRate,
    linkPingMs: given.linkPingMs ?? RELAY_DEFAULTS.linkPingMs,
  }
  const { log } = options
  const directory = new DirectoryClient(options.directoryUrl)
  const peers = new RelayedPeers(options, directory, log)
  const keys = directoryKeys(options.directoryUrl)
  const listening = new ListeningPort()
  const { slots } = listening
  const windows = new WindowBudget(options.maxBufferBytes)

  const tunnels: TunnelOptions = {
    peers,
    maxStreamsPerPeer: options.maxStreamsPerPeer,
    minCallRate: options.minCallRate,
    windows,
    slots: slots as TunnelOptions['slots'],
    carried: { bytes: 0 },
  }
  const introductions = new Introductions(peers, log)
  // Calls are not forwarded: a caller reaches a peer only through a tunnel, so the relay never sees one.
  const onCall = (
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse,
  ) => {
    const slot = slots.callStarted(req.socket)
    res.once('close', () => slots.callEnded(slot))
    if (Introductions.asks(req)) return introductions.answer(req, res)
    if (req.url === '/metrics' && req.method === 'GET') {
      writeHead(res, 200, { 'content-type': 'text/plain; version=0.0.4' })
      return void res.end(relayMetrics(peers.size, tunnels.carried.bytes, introductions.counts))
    }
    if (req.url === '/healthz' && req.method === 'GET') {
      writeHead(res, 200, { 'content-type': 'application/json' })
      return void res.end(JSON.stringify({ ok: true, peers: peers.size }))
    }
    const how = `this relay forwards no calls: reach a relayed peer through a tunnel (GET /relayed/<username>, Upgrade: ${TUNNEL_PROTOCOL})`
    refuse(req, res, 'unimplemented', how)
  }
  const h2 = http2.createServer({ settings: { maxConcurrentStreams: STREAMS_PER_CONNECTION } }, onCall)
  h2.setTimeout(120_000)
  const h1 = http.createServer(onCall)
  const links: LinkOptions = {
    peers,
    directory,
    // Replaced once the port, and so the relay's origin, is known (listening on port 0 picks it).
    verify: async () => {
      throw new Error('not listening yet')
    },
    secure: options.tls !== undefined,
    pingMs: options.linkPingMs,
    windows,
    leaveCallerSlots: (socket) => slots.forget(socket),
  }
  h1.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    if (req.headers.upgrade === TUNNEL_PROTOCOL) acceptTunnel(tunnels, req, socket, head)
    else acceptLink(links, req, socket as net.Socket)
  })

  // A registering peer negotiates h2 (so both ends of its link agree on the protocol that follows) but
  // speaks its registration in HTTP/1.1: the first bytes tell, as on a peer's port. A ClientHello that
  // names a tunnel goes to its peer unread, whether or not the relay serves TLS itself.
  listening.serve(routingTlsTunnels(byHttpVersion({ tls: options.tls, h1, h2 }), tunnels))
  await listening.listen(options.port, options.host)
  const { port } = listening
  const origins = ownOrigins(options.tls ? 'https' : 'http', options.host, port, options.publicUrl)
  links.verify = registrationVerifier(keys, origins)
  log(
    `relay listening on ${options.host}:${port}, directory ${options.directoryUrl}; registers peers with relay tokens for ${[...origins].join(', ')}`,
  )
  return {
    port,
    peers,
    origins,
    adopt: (registrant, session, address) =>
      adoptLink(links, registrant, session, address, MAX_STREAM_WINDOW),
    stop: async () => {
      peers.stop()
      await listening.stop()
    },
  }
}

/**
 * Reads each connection's first TLS record, if it opens with one: a ClientHello whose server name asks
 * for a tunnel (tls-server-name.ts) is carried to that peer; everything else goes on to `others` with
 * its bytes put back.
 */
function routingTlsTunnels(others: Dispatch, tunnels: TunnelOptions): Dispatch {
  return (socket) => {
    readFirstRecord(socket, FIRST_BYTES_MS).then(
      (record) => {
        const username = record && tunnelUsername(clientHelloServerName(record) ?? '')
        if (username) return acceptTlsTunnel(tunnels, username, socket, record)
        if (record) socket.unshift(record)
        others(socket)
        // After the handler took it (a TLS server reads what was put back on the next tick, first).
        process.nextTick(() => socket.resume())
      },
      () => socket.destroy(),
    )
  }
}

/**
 * The origins a relay token must name to register here: the public URL when given, else what the relay
 * listens on (every address of this machine when it listens on all of them). Never the request's Host:
 * a relay's operator could otherwise name another relay there and register with tokens meant for it.
 */
export function ownOrigins(scheme: string, host: string, port: number, publicUrl?: string): Set<string> {
  if (publicUrl) return new Set([new URL(publicUrl).origin])
  const wildcard = host === '0.0.0.0' || host === '::' || host === ''
  const addresses = wildcard
    ? Object.values(networkInterfaces())
        .flatMap((each) => each ?? [])
        .filter((each) => host === '::' || each.family === 'IPv4')
        .map((each) => each.address)
    : [host]
  const origins = new Set<string>()
  for (const address of addresses) {
    const bare = address.replace(/%.*$/, '')
    try {
      origins.add(new URL(`${scheme}://${net.isIPv6(bare) ? `[${bare}]` : bare}:${port}`).origin)
    } catch {
      // An address no URL can name (a link-local one with a zone) is not one peers dial.
    }
  }
  return origins
}

/** The relay's figures in Prometheus' text format: what it carries and how often it only introduced. */
function relayMetrics(peers: number, carried: number, counts: IntroductionCounts): string {
  return [
    '# HELP peerdir_relay_peers Peers registered with this relay.',
    '# TYPE peerdir_relay_peers gauge',
    `peerdir_relay_peers ${peers}`,
    '# HELP peerdir_relay_tunnel_bytes_total Bytes carried through tunnels, both ways.',
    '# TYPE peerdir_relay_tunnel_bytes_total counter',
    `peerdir_relay_tunnel_bytes_total ${carried}`,
    '# HELP peerdir_relay_introductions_total Introductions asked for, by outcome.',
    '# TYPE peerdir_relay_introductions_total counter',
    `peerdir_relay_introductions_total{outcome="introduced"} ${counts.introduced}`,
    `peerdir_relay_introductions_total{outcome="refused"} ${counts.refused}`,
    '',
  ].join('\n')
}
