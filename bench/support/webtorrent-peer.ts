// One WebTorrent client in its own process, for the single-source comparison (never part of peerdir):
//   seed <file> <torrent-out>
//     prints "seeding on port <n>" once the file is hashed and served;
//   leech <torrent> <host:port> <out-dir> <limit-s>
//     prints "done in <seconds>" once every piece is verified and stored, exits 1 if not within <limit-s>.
// No DHT, tracker, LSD, PEX, uTP or NAT mapping: the leecher is told the seeder's address.
import './webrtc-polyfill-off.ts'
import { readFileSync, writeFileSync } from 'node:fs'

const { default: WebTorrent } = await import('webtorrent')
const client = new WebTorrent({
  dht: false,
  lsd: false,
  tracker: false,
  utPex: false,
  utp: false,
  natUpnp: false,
  natPmp: false,
})
client.on('error', fail)

const [mode, ...args] = process.argv.slice(2)
if (mode === 'seed') seed(args[0] ?? '', args[1] ?? '')
else if (mode === 'leech') leech(args[0] ?? '', args[1] ?? '', args[2] ?? '', Number(args[3] ?? 600))
else
  fail(
    new Error(
      'usage: webtorrent-peer.ts seed <file> <torrent-out> | leech <torrent> <host:port> <out-dir> <limit-s>',
    ),
  )

function seed(file: string, torrentOut: string) {
  client.seed(file, { announce: [] }, (torrent) => {
    writeFileSync(torrentOut, torrent.torrentFile)
    const announceListening = () => console.log(`seeding on port ${client.address()?.port}`)
    if (client.address()) announceListening()
    else client.once('listening', announceListening)
  })
}

function leech(torrentFile: string, seeder: string, outDir: string, limitSeconds: number) {
  const started = performance.now()
  setTimeout(() => fail(new Error(`not done within ${limitSeconds} s`)), limitSeconds * 1000).unref()
  const torrent = client.add(readFileSync(torrentFile), { path: outDir, announce: [] })
  torrent.on('error', fail)
  torrent.once('infoHash', () => torrent.addPeer(seeder))
  torrent.once('done', () => {
    console.log(`done in ${(performance.now() - started) / 1000}`)
    process.exit(0)
  })
}

function fail(err: unknown) {
  console.error(`webtorrent peer: ${err instanceof Error ? err.message : String(err)}`)
  process.exit(1)
}

process.on('SIGTERM', () => process.exit(0))
