// WebTorrent, one seeder and one leecher on loopback, each in its own process (bench/support/webtorrent-peer.ts)
// so peerdir's bench process stays as it is. Tracker-less: the leecher is handed the seeder's address.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnUntil } from '../support/processes.ts'
import type { Figure } from '../support/report.ts'

const peerScript = 'bench/support/webtorrent-peer.ts'

const webRtcNote =
  'webrtc-polyfill resolved to an empty module in the WebTorrent bench processes only ' +
  '(bench/support/webrtc-polyfill-off.ts): no WebRTC, plain TCP on loopback'

/** WebTorrent's MiB/s for the single-source file beside `peer get`'s; nothing, with a log line, if it fails. */
export async function webTorrentFigures(options: {
  file: string
  bytes: number
  peerGetMiBs: number
  log: (line: string) => void
}): Promise<Figure[]> {
  const { file, bytes, peerGetMiBs, log } = options
  log(`WebTorrent, one seeder and one leecher (${webRtcNote}) ...`)
  try {
    const miBs = await webTorrentMiBs(file, bytes)
    return [
      {
        key: `webtorrent_single_source_${bytes / 2 ** 20}MiB`,
        value: miBs,
        unit: 'MiB/s',
        versus: 'peer get',
        peerdir: peerGetMiBs,
        ratio: peerGetMiBs / miBs,
        note: webRtcNote,
      },
    ]
  } catch (err) {
    log(`WebTorrent failed, no figure: ${err instanceof Error ? err.message : String(err)}`)
    return []
  }
}

/** MiB/s of a WebTorrent leecher fetching `file` (verified piece by piece, written to disk) from one seeder. */
async function webTorrentMiBs(file: string, bytes: number): Promise<number> {
  const work = mkdtempSync(join(tmpdir(), 'peerdir-bench-webtorrent-'))
  const torrent = join(work, 'file.torrent')
  const seeder = await spawnUntil([peerScript, 'seed', file, torrent], /seeding on port (\d+)/)
  try {
    // A stalled transfer would otherwise hang the whole bench: the leecher gives up well below 2 MiB/s.
    const limitSeconds = Math.ceil(Math.max(120, bytes / 2 ** 21))
    const leecher = await spawnUntil(
      [
        peerScript,
        'leech',
        torrent,
        `127.0.0.1:${seeder.match[1]}`,
        join(work, 'leech'),
        String(limitSeconds),
      ],
      /done in ([\d.]+)/,
    )
    leecher.child.kill('SIGKILL')
    return bytes / 2 ** 20 / Number(leecher.match[1])
  } finally {
    seeder.child.kill('SIGKILL')
    rmSync(work, { recursive: true, force: true })
  }
}
