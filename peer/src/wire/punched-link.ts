import { once } from 'node:events'
import tls from 'node:tls'
import { dialFrom, type Endpoint, PUNCH_MS, parseEndpoint } from './hole-punch.ts'
import { answerStatus, readAnswerHead } from './http1-answer.ts'
import { dialRelayBound } from './relay-dial.ts'
import { INTRODUCE_PATH, relayedUsername } from './relay-protocol.ts'

/**
 * A direct connection to a relayed peer, punched through both NATs (relay-protocol.ts, "introduce"):
 * asks the peer's relay for an introduction from a port bound for it, dials the peer's endpoint from
 * that same port while the peer dials ours, then runs TLS to the peer over the connection made (h2 by
 * ALPN). Resolves with the TLS socket once its handshake is done; checking the key it presents is the
 * caller's (PeerConnection pins it before a byte of HTTP/2). Fails within `ms` when nothing connects
 * (a symmetric NAT, a relay without introductions).
 */
export async function punchToRelayedPeer(relayedUrl: URL, ms = PUNCH_MS): Promise<tls.TLSSocket> {
  const username = relayedUsername(relayedUrl.href)
  if (!username) throw new Error(`${relayedUrl.href} is not a relayed peer's URL`)
  const { punchPort, peer } = await askForIntroduction(relayedUrl, username)
  const socket = await dialFrom(punchPort, peer, ms)
  const secure = tls.connect({ socket, ALPNProtocols: ['h2'], rejectUnauthorized: false })
  const timer = setTimeout(
    () => secure.destroy(new Error('the punched link did not finish its TLS handshake')),
    ms,
  )
  try {
    await once(secure, 'secureConnect')
  } catch (err) {
    secure.destroy()
    throw err
  } finally {
    clearTimeout(timer)
  }
  if (secure.alpnProtocol !== 'h2') {
    secure.destroy()
    throw new Error('the punched link did not agree on HTTP/2')
  }
  return secure
}

/**
 * `POST /v1/introduce/<username>` to the relay, from a port bound for the punch (SO_REUSEADDR, see
 * hole-punch.ts); the relay answers once the peer has taken the introduction, and closes. The punch
 * then dials from the same port: a NAT that keeps a connection's source port (what punching needs)
 * maps it to the same public port the relay saw.
 */
async function askForIntroduction(
  relay: URL,
  username: string,
): Promise<{ punchPort: number; peer: Endpoint }> {
  const socket = await dialRelayBound(relay, 'http/1.1', PUNCH_MS, 'the relay did not introduce us in time')
  try {
    const punchPort = socket.localPort as number
    socket.write(
      `POST ${INTRODUCE_PATH}${username} HTTP/1.1\r\nhost: ${relay.host}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
    )
    const { head, rest } = await readAnswerHead(socket)
    const status = answerStatus(head)
    const body = rest.toString('utf8').trim()
    if (status !== 200)
      throw new Error(`the relay refused an introduction (${status || 'not HTTP'}): ${body.slice(0, 300)}`)
    const answer = JSON.parse(body) as { address?: unknown; port?: unknown }
    const peer = parseEndpoint(
      `${String(answer.address).includes(':') ? `[${answer.address}]` : answer.address}:${answer.port}`,
    )
    if (!peer) throw new Error(`the relay's introduction names no address: ${body.slice(0, 300)}`)
    return { punchPort, peer }
  } finally {
    socket.destroy()
  }
}
