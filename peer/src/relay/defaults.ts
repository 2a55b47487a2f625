import type { Caps } from './relayed-peers.ts'

export type Limits = {
  /** Bytes the relay may buffer for all the tunnels it carries together (buffer-budget.ts). */
  maxBufferBytes: number
  /** Bytes per second a tunnel must move (both ways together), or it is cut (tunnel.ts). */
  minCallRate: number
  /** How often a link is pinged. */
  linkPingMs: number
}

/** `peer relay --help`'s defaults, one place for the CLI and for relays started in process. */
export const RELAY_DEFAULTS: Omit<Caps, 'peerRate'> & Limits = {
  maxPeers: 1024,
  maxPeersPerAddress: 16,
  maxStreamsPerPeer: 64,
  maxBufferBytes: 256 * 1024 ** 2,
  minCallRate: 8 * 1024,
  linkPingMs: 15_000,
}
