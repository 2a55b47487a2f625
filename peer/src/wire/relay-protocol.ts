/**
 * The relay's wire protocol (README "Peers behind NAT"), shared by `peer relay` and the daemons that
 * register with it.
 *
 * A daemon registers by dialling the relay and sending, over HTTP/1.1,
 * `POST /v1/register` with `Connection: Upgrade`, `Upgrade: peerdir-relay/1` and a call token addressed
 * to itself (audience = its own username) as bearer. The relay answers `101 Switching Protocols`; from
 * then on the relay is an HTTP/2 client on that connection and the daemon the server, and the relay
 * forwards to it the PeerService calls that callers send to its relayed URL (relayed-url.ts).
 */
export const REGISTER_PATH = '/v1/register'
export const UPGRADE_PROTOCOL = 'peerdir-relay/1'

export { isRelayedUrl, relayedUrl } from '../../../contract/relayed-url.ts'
