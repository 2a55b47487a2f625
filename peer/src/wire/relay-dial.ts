import { lookup } from 'node:dns/promises'
import { once } from 'node:events'
import net from 'node:net'
import tls from 'node:tls'
import { wildcardFor } from './hole-punch.ts'

/**
 * Dials a relay (`http://` or `https://`, ALPN `alpn` over TLS) from a port bound for it: binding makes
 * libuv set SO_REUSEADDR, so a punch may later dial out from the same port, which the relay has seen
 * our NAT map (hole-punch.ts). A bound socket has one family, so a relay's name is looked up first and
 * its addresses tried in turn, each but the last for ATTEMPT_MS at most (an address that drops packets,
 * as broken IPv6 does, must not use up the whole time). Resolves once connected (TLS handshaken) with
 * `timeoutMs` set as the socket's timeout, which destroys it with `late` as its error; the caller clears
 * it when it is done. Fails with the last address's error, or `late` after `timeoutMs`.
 */
export async function dialRelayBound(
  relay: URL,
  alpn: string,
  timeoutMs: number,
  late: string,
): Promise<net.Socket> {
  const host = relay.hostname.replace(/^\[|\]$/g, '')
  const deadline = Date.now() + timeoutMs
  const addresses = net.isIP(host) ? [host] : await lookUp(host, timeoutMs, late)
  let failure: unknown = new Error(late)
  for (const [i, address] of addresses.entries()) {
    const left = deadline - Date.now()
    if (left <= 0) break
    const last = i === addresses.length - 1
    try {
      const socket = await dialOne(relay, host, address, alpn, last ? left : Math.min(left, ATTEMPT_MS), late)
      socket.setTimeout(Math.max(1, deadline - Date.now()))
      return socket
    } catch (err) {
      failure = err
    }
  }
  throw failure
}

/** How long one of a name's several addresses is given before the next is tried. */
const ATTEMPT_MS = 2000

async function lookUp(host: string, timeoutMs: number, late: string): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(late)), timeoutMs)
  })
  try {
    const found = await Promise.race([lookup(host, { all: true }), timedOut])
    return found.map((each) => each.address)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new Error(code ? `cannot find the relay's address (${code})` : late)
  } finally {
    clearTimeout(timer)
  }
}

async function dialOne(
  relay: URL,
  host: string,
  address: string,
  alpn: string,
  timeoutMs: number,
  late: string,
): Promise<net.Socket> {
  const secure = relay.protocol === 'https:'
  const port = Number(relay.port || (secure ? 443 : 80))
  const to = { host: address, port, localAddress: wildcardFor(address) }
  const socket: net.Socket = secure
    ? tls.connect({ ...to, servername: net.isIP(host) ? undefined : host, ALPNProtocols: [alpn] })
    : net.connect({ ...to, noDelay: true })
  socket.setTimeout(timeoutMs, () => socket.destroy(new Error(late)))
  try {
    await once(socket, secure ? 'secureConnect' : 'connect')
  } catch (err) {
    socket.destroy()
    throw err
  }
  return socket
}
