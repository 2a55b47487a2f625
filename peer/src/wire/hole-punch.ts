import net from 'node:net'

/**
 * TCP hole punching (relay-protocol.ts, "introduce"): both sides dial each other at once, each from the
 * port its NAT already maps for the relay, so each one's SYN opens its own NAT for the other's. Every
 * socket here is bound explicitly, which makes libuv set SO_REUSEADDR on it: on Linux two connecting
 * sockets may then share a local port (no listening socket is involved), so the punch leaves the
 * connection to the relay that taught the NAT its mapping open.
 */

export type Endpoint = { address: string; port: number }

/** How long a punch may take from the introduction: past it, the relay keeps carrying. */
export const PUNCH_MS = 5000
const KEEPALIVE_MS = 15_000
/** A refused dial (the other side's NAT answered before its own SYN went out) is tried again after this. */
const REDIAL_MS = 100

/** `10.0.0.1:4000`, `[2001:db8::1]:4000`: as the punch header and logs write an endpoint. */
export function formatEndpoint({ address, port }: Endpoint): string {
  return net.isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`
}

/** An endpoint as formatEndpoint writes it (an IP literal and a port), or undefined for anything else. */
export function parseEndpoint(text: string): Endpoint | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(text.trim())
  if (!match) return undefined
  const address = unmapped((match[1] ?? match[2]) as string)
  const port = Number(match[3])
  if (net.isIP(address) === 0 || port < 1 || port > 65_535) return undefined
  return { address, port }
}

/** An IPv4 address as a dual-stack socket reports it (`::ffff:10.0.0.1`) is dialled as IPv4. */
export function unmapped(address: string): string {
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(address) ? address.slice(7) : address
}

/** The address to bind for dialling `address` from a chosen port: every local one of its family. */
export function wildcardFor(address: string): string {
  return net.isIPv6(address) ? '::' : '0.0.0.0'
}

/**
 * Dials `to` from local port `from` until connected or `ms` pass. A refusal (an RST from a NAT that
 * rejects rather than drops, while the other side's SYN is not out yet) is dialled again shortly; a
 * SYN that was dropped is sent again by the kernel, and the other side's SYN completes the open.
 */
export function dialFrom(from: number, to: Endpoint, ms = PUNCH_MS): Promise<net.Socket> {
  const deadline = Date.now() + ms
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const socket = net.connect({
        host: to.address,
        port: to.port,
        localAddress: wildcardFor(to.address),
        localPort: from,
        noDelay: true,
      })
      const timer = setTimeout(
        () => {
          socket.destroy()
          reject(new Error(`no connection with ${formatEndpoint(to)} within ${ms} ms`))
        },
        Math.max(0, deadline - Date.now()),
      )
      socket.once('connect', () => {
        clearTimeout(timer)
        // Holds both NATs' mappings while the link is idle (home routers forget a quiet one in minutes).
        socket.setKeepAlive(true, KEEPALIVE_MS)
        resolve(socket)
      })
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer)
        socket.destroy()
        const again = err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET' || err.code === 'EHOSTUNREACH'
        if (again && Date.now() + REDIAL_MS < deadline) setTimeout(attempt, REDIAL_MS)
        else reject(err)
      })
    }
    attempt()
  })
}
