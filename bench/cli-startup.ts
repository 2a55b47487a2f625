// What a script that calls `peer` pays per call, and what an idle daemon holds: `peer status` beside
// Node starting and doing nothing (the floor), `peer search` beside curl asking the directory the same
// search, and the resident memory of a daemon that has published and sits idle.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { network } from './support/network.ts'
import { nodeBin, repoRoot, residentMiB } from './support/processes.ts'
import type { Figure } from './support/report.ts'

const peerBin = join(repoRoot, 'dist/peer.js')
const BEFORE =
  'before the build step (a779e85: TypeScript stripped at every start, tsx for the directory), same machine: ' +
  'peer status 500 ms, peer search 504 ms beside curl 27 ms, idle daemon 110 MiB, 1 GiB download peak 171 MiB'

/** Median wall time in milliseconds of running `command args` `runs` times (after one warm-up run). */
function medianWallMs(
  [command, ...args]: string[],
  env: Record<string, string>,
  runs: number,
  exitCode = 0,
): number {
  const times: number[] = []
  for (let run = 0; run <= runs; run++) {
    const started = performance.now()
    const result = spawnSync(command ?? '', args, { env: { ...process.env, ...env }, stdio: 'ignore' })
    if (result.status !== exitCode) throw new Error(`${command} ${args.join(' ')} exited ${result.status}`)
    if (run > 0) times.push(performance.now() - started)
  }
  times.sort((a, b) => a - b)
  return times[Math.floor(times.length / 2)] ?? 0
}

export async function benchCli(options: { quick: boolean; log: (line: string) => void }): Promise<Figure[]> {
  const runs = options.quick ? 7 : 21
  const net = await network()
  try {
    const daemon = await net.peer('idle')
    // The shebang's `env node` finds the project's Node first, as under npm scripts.
    const env = { ...net.env, PATH: `${join(repoRoot, 'node_modules/.bin')}:${process.env.PATH ?? ''}` }
    const port = String(daemon.port)
    options.log(`timing peer status, peer search and curl, ${runs} runs each ...`)
    const nodeMs = medianWallMs([nodeBin, '-e', '0'], env, runs)
    const statusMs = medianWallMs([peerBin, 'status', '--json', '--port', port], env, runs)
    // Nothing matches: both ask the directory and get an empty answer (peer exits 3 for that).
    const searchMs = medianWallMs([peerBin, 'search', 'zzzz-nothing', '--json', '--port', port], env, runs, 3)
    const curlMs = medianWallMs(['curl', '-sf', `${net.directoryUrl}/v1/search?q=zzzz-nothing`], env, runs)
    // Idle: published, its first heartbeat behind it.
    await new Promise((resolve) => setTimeout(resolve, 3000))
    const idleRss = await residentMiB(daemon.pid, 'VmRSS')
    return [
      {
        key: 'cli_peer_status_ms',
        value: statusMs,
        unit: 'ms',
        versus: 'node -e 0 (Node starting alone)',
        ratio: statusMs / nodeMs,
      },
      { key: 'node_start_ms', value: nodeMs, unit: 'ms' },
      {
        key: 'cli_peer_search_ms',
        value: searchMs,
        unit: 'ms',
        versus: 'curl of the same directory search',
        ratio: searchMs / curlMs,
      },
      { key: 'curl_directory_search_ms', value: curlMs, unit: 'ms' },
      { key: 'daemon_idle_rss', value: idleRss, unit: 'MiB', note: BEFORE },
    ]
  } finally {
    net.close()
  }
}
