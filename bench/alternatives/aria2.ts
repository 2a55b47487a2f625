// aria2c (Debian's `aria2`, detected, never installed by the bench) fetching one file in segments from
// 1, 2, 4 plain HTTP servers, each its own process throttled to the rate the peerdir swarm's sources use.
import { execFile, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnUntil } from '../support/processes.ts'
import type { Figure } from '../support/report.ts'

const MiB = 2 ** 20

/** aria2c's version line, or undefined when it is not on PATH. */
export function aria2Version(): string | undefined {
  const probe = spawnSync('aria2c', ['--version'], { encoding: 'utf8' })
  return probe.status === 0 ? probe.stdout.split('\n')[0]?.trim() : undefined
}

/**
 * Each count's aggregate as a multiple of the per-server rate, beside peerdir's swarm figure for the same
 * count (`peerdir`: sources → multiple of R); nothing, with a line in the log, when aria2c is missing.
 */
export async function aria2Figures(options: {
  file: string
  sha256: string
  bytes: number
  rateMiBs: number
  peerdir: Map<number, number>
  log: (line: string) => void
}): Promise<Figure[]> {
  const { file, sha256, bytes, rateMiBs, peerdir, log } = options
  const version = aria2Version()
  if (!version) {
    log('aria2c not found (Debian package `aria2`): skipping the many-source comparison')
    return []
  }
  const figures: Figure[] = []
  for (const [count, peerdirMultiple] of peerdir) {
    log(`aria2c: ${count} HTTP server(s) at ${rateMiBs} MiB/s each ...`)
    try {
      const seconds = await aria2Download(file, sha256, bytes, rateMiBs, count)
      const multiple = bytes / MiB / seconds / rateMiBs
      figures.push({
        key: `aria2c_${count}_http_servers_rate_multiple_of_R`,
        value: multiple,
        unit: `x R (R = ${rateMiBs} MiB/s)`,
        versus: `peerdir, ${count} source${count > 1 ? 's' : ''}`,
        peerdir: peerdirMultiple,
        ratio: peerdirMultiple / multiple,
        note: `${version}: one connection per server, segments >= 1 MiB, SHA-256 checked`,
      })
    } catch (err) {
      log(`aria2c with ${count} server(s) failed: ${err instanceof Error ? err.message : String(err)}`)
    }
  }
  return figures
}

/** Seconds aria2c takes to fetch and check `file` from `count` throttled servers. */
async function aria2Download(file: string, sha256: string, bytes: number, rateMiBs: number, count: number) {
  const work = mkdtempSync(join(tmpdir(), 'peerdir-bench-aria2-'))
  const servers: Awaited<ReturnType<typeof spawnUntil>>[] = []
  try {
    for (let i = 0; i < count; i++) {
      // aria2c caps connections per host, not per port: each server gets its own loopback address,
      // as mirrors on separate machines would.
      const host = `127.0.0.${i + 1}`
      const server = await spawnUntil(
        ['bench/support/throttled-http-server.ts', file, String(rateMiBs * MiB), host],
        /listening on port (\d+)/,
      )
      servers.push(server)
    }
    const uris = servers.map((server, i) => `http://127.0.0.${i + 1}:${server.match[1]}/file.bin`)
    const args = [
      '--no-conf=true',
      '--quiet=true',
      `--dir=${work}`,
      '--out=file.bin',
      `--split=${count}`,
      '--max-connection-per-server=1',
      '--min-split-size=1M',
      '--file-allocation=none',
      '--allow-overwrite=true',
      '--auto-file-renaming=false',
      `--checksum=sha-256=${sha256}`,
      ...uris,
    ]
    const limit = Math.max(120, (4 * bytes) / MiB / rateMiBs) * 1000
    return await new Promise<number>((resolve, reject) => {
      const started = performance.now()
      execFile('aria2c', args, { timeout: limit }, (err, _stdout, stderr) =>
        err ? reject(new Error(stderr.trim() || err.message)) : resolve((performance.now() - started) / 1000),
      )
    })
  } finally {
    for (const server of servers) server.child.kill('SIGKILL')
    rmSync(work, { recursive: true, force: true })
  }
}
