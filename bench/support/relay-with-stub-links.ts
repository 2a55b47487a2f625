// A relay (in this process) whose relayed peers are stubs listening on the ports given as arguments:
// the relay holds an HTTP/2 client session to each, as on a registered link. Prints its port, then
// lives until killed. For bench/relay-flood.ts, which measures this process's memory.
import http2 from 'node:http2'
import { startRelay } from '../../peer/src/relay/relay-server.ts'

const ports = process.argv.slice(2).map(Number)
const relay = await startRelay({
  port: 0,
  host: '127.0.0.1',
  directoryUrl: 'http://127.0.0.1:9',
  maxPeers: 1024,
  maxStreamsPerPeer: 64,
  peerRate: undefined,
  log: () => {},
})
for (const [i, port] of ports.entries()) {
  const link = http2.connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: 1024 * 1024 } })
  await new Promise((resolve) => link.once('connect', resolve))
  relay.adopt({ username: `stub${i}`, sessionId: `sid${i}`, token: 'unused', issuedAt: 0 }, link, `stub${i}`)
}
console.log(JSON.stringify({ port: relay.port }))
