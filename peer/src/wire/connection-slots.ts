import net from 'node:net'

/** Connections the RPC port holds at once: each costs a socket, HTTP/2 state and buffers. */
export const MAX_CONNECTIONS = 512
/**
 * Connections one address (an IPv4 address, or an IPv6 /64) may hold. A downloader keeps one HTTP/2
 * connection per source, so even dozens of peers behind one NAT need far fewer; and a single address
 * can never hold more than an eighth of the slots, even with a call in flight on each.
 */
export const MAX_CONNECTIONS_PER_ADDRESS = 64

/** An IPv4 address as a dual-stack socket reports it (`::ffff:10.0.0.1`) is the IPv4 address. */
export function unmapped(address: string): string {
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(address) ? address.slice(7) : address
}

/**
 * The address a connection's slot is counted against: an IPv4 address as is (also when written as an
 * IPv4-mapped IPv6 address), an IPv6 address by its /64, the block one subscriber is given and may pick
 * any address from.
 */
export function addressKey(address: string): string {
  const plain = unmapped(address)
  if (net.isIPv4(plain)) return plain
  const bare = address.replace(/%.*$/, '')
  const [head = '', tail] = bare.split('::')
  const headGroups = head ? head.split(':') : []
  const tailGroups = tail === undefined ? [] : tail ? tail.split(':') : []
  // A trailing dotted IPv4 part fills the last two groups, after the /64.
  const tailLength = tailGroups.reduce((n, group) => n + (group.includes('.') ? 2 : 1), 0)
  const groups = [...headGroups, ...Array<string>(Math.max(0, 8 - headGroups.length - tailLength)).fill('0')]
  groups.push(...tailGroups)
  return `${groups
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16))
    .join(':')}::/64`
}

type Slot = { socket: net.Socket; key: string; address: string; streams: number; released: boolean }

/**
 * The RPC port's connection slots. Every accepted connection takes one. When its address or the port is
 * full, the connection there that has been idle longest (no request or stream open: silent, in its TLS
 * handshake, or between calls) is closed to make room; one with a call in flight never is, and a
 * newcomer finding only those is refused. So connections that hold a slot and do nothing cannot lock
 * callers out, and one address cannot fill the port.
 */
export class ConnectionSlots {
  readonly #slots = new Map<string, Slot>()
  /** The idle slots, in the order they became idle: the first has been idle longest. */
  readonly #idle = new Set<Slot>()
  readonly #perAddress = new Map<string, number>()
  readonly #max: number
  readonly #maxPerAddress: number

  constructor(max = MAX_CONNECTIONS, maxPerAddress = MAX_CONNECTIONS_PER_ADDRESS) {
    this.#max = max
    this.#maxPerAddress = maxPerAddress
  }

  get size() {
    return this.#slots.size
  }

  /** Takes a slot for a new connection, or destroys it (and returns false) when none can be freed. */
  admit(socket: net.Socket): boolean {
    const key = connectionKey(socket)
    if (!key || !socket.remoteAddress) {
      socket.destroy()
      return false
    }
    const address = addressKey(socket.remoteAddress)
    const fromAddress = this.#perAddress.get(address) ?? 0
    const room =
      (fromAddress < this.#maxPerAddress || this.#evictIdle((slot) => slot.address === address)) &&
      (this.#slots.size < this.#max || this.#evictIdle(() => true))
    if (!room) {
      socket.destroy()
      return false
    }
    // The same four-part key twice means the first connection is gone though its close is not seen
    // yet: it gives way, so no slot outlives its connection.
    const older = this.#slots.get(key)
    if (older) {
      this.#release(older)
      older.socket.destroy()
    }
    const slot: Slot = { socket, key, address, streams: 0, released: false }
    this.#slots.set(key, slot)
    this.#idle.add(slot)
    this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1)
    socket.once('close', () => this.#release(slot))
    return true
  }

  /**
   * A request or HTTP/2 stream opened on the connection `socket` (the socket a request or session names,
   * which may be a TLS socket or Node's proxy of one): returns what `callEnded` takes when it ends.
   */
  callStarted(socket: net.Socket): Slot | undefined {
    const key = connectionKey(socket)
    const slot = key === undefined ? undefined : this.#slots.get(key)
    if (!slot) return undefined
    slot.streams++
    this.#idle.delete(slot)
    return slot
  }

  callEnded(slot: Slot | undefined) {
    if (!slot || slot.released) return
    slot.streams--
    if (slot.streams === 0) this.#idle.add(slot)
  }

  /**
   * Gives up the slot of a connection that stays open but is no longer a caller's (a relay's link to a
   * registered peer, counted in its own pool): it is neither counted nor ever evicted here again.
   */
  forget(socket: net.Socket) {
    const key = connectionKey(socket)
    const slot = key === undefined ? undefined : this.#slots.get(key)
    if (slot) this.#release(slot)
  }

  /** Closes every connection (the server is stopping). */
  destroyAll() {
    for (const slot of [...this.#slots.values()]) slot.socket.destroy()
  }

  #evictIdle(matches: (slot: Slot) => boolean): boolean {
    for (const slot of this.#idle) {
      if (!matches(slot)) continue
      this.#release(slot)
      slot.socket.destroy()
      return true
    }
    return false
  }

  #release(slot: Slot) {
    if (slot.released) return
    slot.released = true
    if (this.#slots.get(slot.key) === slot) this.#slots.delete(slot.key)
    this.#idle.delete(slot)
    const left = (this.#perAddress.get(slot.address) ?? 1) - 1
    if (left === 0) this.#perAddress.delete(slot.address)
    else this.#perAddress.set(slot.address, left)
  }
}

/**
 * One live connection is told apart from the others by both ends: the caller's address and port alone
 * repeat when it reaches two local addresses of this machine.
 */
function connectionKey(socket: net.Socket): string | undefined {
  try {
    const { remoteAddress, remotePort, localAddress, localPort } = socket
    return remoteAddress && remotePort
      ? `${localAddress}|${localPort}|${remoteAddress}|${remotePort}`
      : undefined
  } catch {
    // Node's proxy of an HTTP/2 session's socket throws once the session is gone.
    return undefined
  }
}
