// bittorrent-tracker's HTTP tracker in its own process, so it and peerdir's directory are measured alike.
// Prints "port <n>" once listening. The comparison target only; never part of peerdir.
import Server from 'bittorrent-tracker/server'

const server = new Server({ udp: false, ws: false, stats: false, trustProxy: false })
server.on('error', (err: Error) => console.error(`tracker error: ${err.message}`))
server.on('warning', () => {})
server.listen(0, '127.0.0.1', () => {
  const address = server.http.address()
  console.log(`port ${typeof address === 'object' && address ? address.port : 0}`)
})
process.on('SIGTERM', () => server.close(() => process.exit(0)))
