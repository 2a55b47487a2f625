// Transfers on loopback: one source next to curl (single-source.ts) and WebTorrent; swarm speed-up
// with sources throttled to the same rate, next to aria2; downloader peak memory.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { aria2Figures } from './alternatives/aria2.ts'
import { webTorrentFigures } from './alternatives/webtorrent.ts'
import { benchSingleSource } from './single-source.ts'
import { hashFile, makeFile } from './support/files.ts'
import { network } from './support/network.ts'
import { peakRssMiB } from './support/processes.ts'
import type { Figure } from './support/report.ts'

const MiB = 1024 * 1024

export async function benchTransfer(options: {
  quick: boolean
  log: (line: string) => void
}): Promise<Figure[]> {
  const { quick, log } = options
  const figures: Figure[] = []
  const work = mkdtempSync(join(tmpdir(), 'peerdir-bench-files-'))
  try {
    // Single source: peerdir next to curl (from Node's http and from nginx) and the raw ceiling.
    const single = await benchSingleSource({ quick, work, log })
    figures.push(...single.figures)
    figures.push(
      ...(await webTorrentFigures({
        file: single.file,
        bytes: (quick ? 256 : 1024) * MiB,
        peerGetMiBs: single.peerMiBs,
        log,
      })),
    )

    // Many sources, each throttled to the same rate R.
    const rate = quick ? 16 : 24
    const swarmSize = (quick ? 128 : 384) * MiB
    const swarmFile = join(work, `swarm-${swarmSize / MiB}MiB.bin`)
    makeFile(swarmFile, swarmSize)
    const swarmSha = await hashFile(swarmFile)
    const swarmMultiples = new Map<number, number>()
    for (const count of [1, 2, 4]) {
      log(`swarm: ${count} source(s) at ${rate} MiB/s each ...`)
      const swarm = await network()
      try {
        for (let i = 0; i < count; i++) await swarm.peer(`s${i}`, { files: [swarmFile], rate: `${rate}M` })
        const fetcher = await swarm.peer('fetcher')
        const got = await swarm.get(fetcher.port, swarmSha)
        const aggregate = swarmSize / MiB / got.seconds
        swarmMultiples.set(count, aggregate / rate)
        figures.push({
          key: `swarm_${count}_sources_rate_multiple_of_R`,
          value: aggregate / rate,
          unit: `x R (R = ${rate} MiB/s)`,
        })
      } finally {
        swarm.close()
      }
    }

    figures.push(
      ...(await aria2Figures({
        file: swarmFile,
        sha256: swarmSha,
        bytes: swarmSize,
        rateMiBs: rate,
        peerdir: swarmMultiples,
        log,
      })),
    )

    // Downloader memory does not grow with file size.
    for (const gib of quick ? [] : [1, 4]) {
      log(`peak RSS of a downloader fetching ${gib} GiB ...`)
      const big = join(work, `rss-${gib}GiB.bin`)
      makeFile(big, gib * 1024 * MiB)
      const bigSha = await hashFile(big)
      const net2 = await network()
      try {
        await net2.peer('a', { files: [big] })
        await net2.peer('b', { files: [big] })
        const fetcher = await net2.peer('fetcher')
        await net2.get(fetcher.port, bigSha)
        figures.push({
          key: `downloader_peak_rss_${gib}GiB`,
          value: await peakRssMiB(fetcher.pid),
          unit: 'MiB',
        })
      } finally {
        net2.close()
        rmSync(big, { force: true })
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
  return figures
}
