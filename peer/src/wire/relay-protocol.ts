/**
 * The relay's wire protocol (README "Peers behind NAT"), shared by `peer relay` and the daemons that
 * register with it.
 *
 * A daemon registers by dialling the relay and sending, over HTTP/1.1,
 * `POST /v1/register` with `Connection: Upgrade`, `Upgrade: peerdir-relay/1` and a call token addressed
 * to itself (audience = its own username) as bearer. The relay answers `101 Switching Protocols`; from
 * then on the relay is an HTTP/2 client on that connection and the daemon the server.
 *
 * A caller reaches a relayed peer through a tunnel: over its own connection to the relay it sends
 * `GET /relayed/<username>` with `Connection: Upgrade` and `Upgrade: peerdir-tunnel/1`; the relay opens
 * an HTTP/2 CONNECT stream to the peer over its link, and once the peer answers 200 it answers
 * `101 Switching Protocols` (with the peer's `peerdir-inner`: `tls` or `plaintext`, what the peer's
 * port speaks) and from then on carries the bytes both ways, reading none. The caller then speaks to
 * the peer inside the tunnel as it would on the peer's port: TLS end to end when the peer serves it.
 *
 * A caller that pins the peer's key skips the upgrade: it opens TLS straight to the relay's port with the
 * server name `<username>.tunnel.peerdir.invalid` (tls-server-name.ts). The relay reads that one name
 * from the ClientHello, opens the CONNECT stream as above and carries the connection to the peer from
 * its first byte, the ClientHello included; the peer's TLS answers it. No round trip of the relay's own,
 * and the caller's TLS runs on its kernel socket, not on a stream in JS. The relay cannot answer in
 * words there: it refuses with a TLS alert, `unrecognized_name` when it carries no such peer and
 * `internal_error` otherwise (at its caps, or the peer did not take the tunnel or serves no TLS).
 *
 * A caller may also ask the relay to introduce it, so that the bytes flow directly where both NATs allow
 * (hole-punch.ts): from a port it binds for that (its punch port) it sends
 * `POST /v1/introduce/<username>`. The relay sends the peer, over its link, `POST /v1/punch` with
 * `peerdir-punch-to: <the caller's address and port as the relay sees them>`; the peer answers 200 at
 * once and dials that address from its link's own port. The relay then answers the caller 200 with
 * `{"address": …, "port": …}`, the peer's link as the relay sees it, and the caller dials it from its
 * punch port. Each side's first packet out opens its own NAT for the other's: whichever SYN comes second
 * meets an open mapping and the two connects become one connection (a TCP simultaneous open). The
 * peer is the TLS server on it, and the caller pins the peer's listed key as on any link. Neither side
 * chooses where the other dials: each is told the address the relay saw, so an introduction can only
 * make a peer dial back the one who asked.
 */
export const REGISTER_PATH = '/v1/register'
export const UPGRADE_PROTOCOL = 'peerdir-relay/1'
export const TUNNEL_PROTOCOL = 'peerdir-tunnel/1'
/** The peer's answer to a tunnel, passed on by the relay: what the caller must speak inside it. */
export const INNER_HEADER = 'peerdir-inner'
export type Inner = 'tls' | 'plaintext'
export const INTRODUCE_PATH = '/v1/introduce/'
export const PUNCH_PATH = '/v1/punch'
/** On the relay's punch request: where the peer dials, `<address>:<port>` (IPv6 in brackets). */
export const PUNCH_TO_HEADER = 'peerdir-punch-to'

export {
  isRelayedUrl,
  relayedPathUsername,
  relayedUrl,
  relayedUsername,
} from '../../../contract/relayed-url.ts'
