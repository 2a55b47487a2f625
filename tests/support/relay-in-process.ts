import { type Relay, type RelayOptions, startRelay } from '../../peer/src/relay/relay-server.ts'

/**
 * `peer relay` in this process on loopback (port 0), silent, with no rate cap: the tests that hold its
 * links themselves (`relay.adopt`) need no directory, so its URL names a port nothing answers on unless
 * `options` names one.
 */
export function startRelayInProcess(options: Partial<RelayOptions> = {}): Promise<Relay> {
  return startRelay({
    port: 0,
    host: '127.0.0.1',
    directoryUrl: 'http://127.0.0.1:9',
    peerRate: undefined,
    log: () => {},
    ...options,
  })
}
