// How transfer cost grows with size: `peer get` from one source (verified, written to disk) of files
// 4x apart, on one network, smallest first. Each later size is also set against the linear extrapolation
// from the smallest: below 1x, fixed costs are being spread; above, something grows faster than the bytes.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { hashFile, makeFile } from './support/files.ts'
import { network } from './support/network.ts'
import type { Figure } from './support/report.ts'

const MiB = 2 ** 20

export async function benchTransferSeries(options: {
  quick: boolean
  log: (line: string) => void
}): Promise<Figure[]> {
  const { quick, log } = options
  const sizes = quick ? [16, 64, 256] : [64, 256, 1024]
  const work = mkdtempSync(join(tmpdir(), 'peerdir-bench-series-'))
  try {
    log(`writing ${sizes.join(', ')} MiB files for the transfer time series ...`)
    const files = sizes.map((size) => ({ size, path: join(work, `series-${size}MiB.bin`) }))
    for (const file of files) makeFile(file.path, file.size * MiB)
    const hashes = await Promise.all(files.map((file) => hashFile(file.path)))
    const net = await network()
    try {
      await net.peer('source', { files: files.map((file) => file.path) })
      const fetcher = await net.peer('fetcher')
      const figures: Figure[] = []
      let first: { size: number; seconds: number } | undefined
      for (const [i, file] of files.entries()) {
        log(`transfer time series: peer get of ${file.size} MiB ...`)
        const seconds = await net.get(fetcher.port, hashes[i] ?? '').then(
          (got) => got.seconds,
          (err: Error) => log(`peer get of ${file.size} MiB failed, no figure: ${err.message.trim()}`),
        )
        if (seconds === undefined) continue
        first ??= { size: file.size, seconds }
        const linear = (first.seconds * file.size) / first.size
        figures.push({
          key: `transfer_time_single_source_${file.size}MiB`,
          value: seconds,
          unit: 's',
          ...(first.size === file.size
            ? {}
            : { versus: `linear from ${first.size} MiB`, ratio: seconds / linear }),
        })
      }
      return figures
    } finally {
      net.close()
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}
