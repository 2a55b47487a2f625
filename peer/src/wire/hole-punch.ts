import net from 'node:net'
import { unmapped } from './connection-slots.ts'

/**
 * TCP hole punching (relay-protocol.ts, "introduce"): both sides dial each other at once, each from the
 * port its NAT already maps for the relay, so each one's SYN opens its own NAT for the other's. Every
 * socket here is bound explicitly, which makes libuv set SO_REUSEADDR on it: on Linux two connecting
 * sockets may then share a local port (no listening socket is involved), so a punch can dial out from
 * the port of a connection to the relay that is still open.
 */

export { unmapped }

export type Endpoint = { address: string; port: number }

/** How long a punch may take from the introduction: past it, the relay keeps carrying. */
export const PUNCH_MS = 5000
/** A refused dial (the other side's NAT answered before its own SYN went out) is tried again after this. */
const REDIAL_MS = 250
/** Holds both NATs' mappings while a punched link is idle (home routers forget a quiet one in minutes). */
const KEEPALIVE_MS = 15_000

/**
 * Addresses no punch dials, whoever names them: this machine (loopback, the unspecified address, which
 * Linux takes for loopback), link-local, multicast and broadcast ones. A private address may be a NAT's
 * public side on a campus or in a lab, so it is allowed.
 */
const NEVER_DIALLED = (() => {
  const list = new net.BlockList()
  for (const [prefix, bits] of [
    ['0.0.0.0', 8],
    ['127.0.0.0', 8],
    ['169.254.0.0', 16],
    ['224.0.0.0', 4],
    ['240.0.0.0', 4],
  ] as const)
    list.addSubnet(prefix, bits, 'ipv4')
  for (const [prefix, bits] of [
    ['::', 127],
    ['fe80::', 10],
    ['ff00::', 8],
  ] as const)
    list.addSubnet(prefix, bits, 'ipv6')
  return list
})()

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

/**
 * Whether a punch may dial `to`: an address on the network (none of NEVER_DIALLED), of the family the
 * connection to the relay has (a relay cannot send a peer across to the other family).
 */
export function dialable(to: Endpoint, family: 'IPv4' | 'IPv6'): boolean {
  const kind = net.isIPv4(to.address) ? 'ipv4' : 'ipv6'
  if ((kind === 'ipv4') !== (family === 'IPv4')) return false
  return !NEVER_DIALLED.check(to.address, kind)
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
          socket.off('error', failed)
          socket.destroy()
          reject(new Error(`no connection with ${formatEndpoint(to)} within ${ms} ms`))
        },
        Math.max(0, deadline - Date.now()),
      )
      const failed = (err: NodeJS.ErrnoException) => {
        clearTimeout(timer)
        socket.destroy()
        const again = err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET' || err.code === 'EHOSTUNREACH'
        if (again && Date.now() + REDIAL_MS < deadline) setTimeout(attempt, REDIAL_MS)
        else reject(err)
      }
      socket.once('error', failed)
      socket.once('connect', () => {
        clearTimeout(timer)
        // From here on its errors are its user's: this dial is over.
        socket.off('error', failed)
        socket.setKeepAlive(true, KEEPALIVE_MS)
        resolve(socket)
      })
    }
    attempt()
  })
}
