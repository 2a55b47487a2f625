import { lookup } from 'node:dns/promises'
import { once } from 'node:events'
import net from 'node:net'
import tls from 'node:tls'
import { wildcardFor } from './hole-punch.ts'

/**
 * Dials a relay (`http://` or `https://`, ALPN `alpn` over TLS) from a port bound for it: binding makes
 * libuv set SO_REUSEADDR, so a punch may later dial out from the same port, which the relay has seen
 * our NAT map (hole-punch.ts). Resolves once connected (TLS handshaken) with `timeoutMs` set as the
 * socket's timeout, which destroys it with `late` as its error; the caller clears it when it is done.
 */
export async function dialRelayBound(
  relay: URL,
  alpn: string,
  timeoutMs: number,
  late: string,
): Promise<net.Socket> {
  const host = relay.hostname.replace(/^\[|\]$/g, '')
  const secure = relay.protocol === 'https:'
  const port = Number(relay.port || (secure ? 443 : 80))
  let address: string
  try {
    address = net.isIP(host) ? host : (await lookup(host)).address
  } catch (err) {
    throw new Error(`cannot find the relay's address (${(err as NodeJS.ErrnoException).code ?? err})`)
  }
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
