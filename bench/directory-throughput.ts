// The directory on Node with its libSQL file, under autocannon, next to bittorrent-tracker's HTTP
// announce (the closest public analogue: a peer asks who has X), same machine, same client.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { cpuSeconds } from './support/cpu.ts'
import { peakRssMiB, spawnUntil } from './support/processes.ts'
import type { Figure } from './support/report.ts'
import { seededDatabase, seededRandom } from './support/seed-directory.ts'

/** `serverCpuUs`: CPU-microseconds the serving process spent per answered request. */
type Run = {
  reqPerSec: number
  p50: number
  p99: number
  non2xx: number
  errors: number
  serverCpuUs: number
}

const CONNECTIONS = 50
/** Rounds of each compared route, alternating (see benchDirectory). */
const ROUNDS = 3

/** Each figure the median of the rounds' (failures summed). */
function medianRun(runs: Run[]): Run {
  const median = (pick: (run: Run) => number) => {
    const sorted = runs.map(pick).sort((a, b) => a - b)
    return sorted[Math.floor(sorted.length / 2)] ?? 0
  }
  return {
    reqPerSec: median((run) => run.reqPerSec),
    p50: median((run) => run.p50),
    p99: median((run) => run.p99),
    serverCpuUs: median((run) => run.serverCpuUs),
    non2xx: runs.reduce((n, run) => n + run.non2xx, 0),
    errors: runs.reduce((n, run) => n + run.errors, 0),
  }
}

/**
 * One route under load from `server` (the process answering it). Requests per second alone would
 * rank the client as much as the server when both share the two cores; the server's CPU per request
 * ranks the server alone.
 */
async function cannon(server: number, options: autocannon.Options): Promise<Run> {
  const before = await cpuSeconds(server)
  const result = await autocannon({ connections: CONNECTIONS, ...options })
  const spent = (await cpuSeconds(server)) - before
  return {
    reqPerSec: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    serverCpuUs: (spent * 1e6) / Math.max(1, result.requests.total),
  }
}

const urlBytes = (bytes: Buffer) => [...bytes].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')

export async function benchDirectory(options: {
  quick: boolean
  log: (line: string) => void
}): Promise<Figure[]> {
  const { quick, log } = options
  const peers = quick ? 1000 : 10_000
  const duration = quick ? 3 : 10
  const round = quick ? 3 : 5
  const dir = mkdtempSync(join(tmpdir(), 'peerdir-bench-dir-'))
  const dbPath = join(dir, 'directory.db')
  const dbUrl = `file:${dbPath}`
  log(`seeding ${peers} peers x 100 files (or copying the cached seed) ...`)
  const seeded = await seededDatabase(dbPath, {
    peers,
    perPeer: 100,
    onProgress: (n) => n % 200_000 === 0 && log(`  ${n}`),
  })
  log(
    seeded.cached
      ? `copied the cached seed of ${seeded.files} files`
      : `seeded ${seeded.files} files in ${seeded.seconds.toFixed(0)} s`,
  )

  const directory = await spawnUntil(
    ['dist/peerdir-directory.js', '--port', '0', '--db', dbUrl],
    /listening on (http:\/\/\S+)/,
    { LEASE_SECONDS: '3600' },
  )
  const tracker = await spawnUntil(['bench/support/tracker-server.ts'], /port (\d+)/)
  const base = directory.match[1] ?? ''
  const directoryPid = directory.child.pid ?? 0
  const trackerPid = tracker.child.pid ?? 0
  const trackerBase = `http://127.0.0.1:${tracker.match[1]}`
  const figures: Figure[] = []
  try {
    const login = await fetch(`${base}/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'peer1', password: seeded.password, url: 'http://127.0.0.1:20001' }),
    })
    const { token } = (await login.json()) as { token: string }
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }

    // Fill the tracker like the directory: `peers` peers announcing across the 1,000 popular contents.
    const random = seededRandom(7)
    const infoHashes = Array.from({ length: 1000 }, () => Buffer.from(random.hex64().slice(0, 40), 'hex'))
    for (let i = 0; i < peers; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, async (_, j) => {
          const peerId = Buffer.from(`-PD0001-${String(i + j).padStart(12, '0')}`)
          const hash = infoHashes[(i + j) % infoHashes.length] as Buffer
          await fetch(
            `${trackerBase}/announce?info_hash=${urlBytes(hash)}&peer_id=${urlBytes(peerId)}&port=${20000 + ((i + j) % 40000)}&uploaded=0&downloaded=0&left=0&compact=1&event=started`,
          ).then((r) => r.arrayBuffer())
        }),
      )
    }
    // The tracker's cheapest announce: a peer alone on its hash (the content nobody else has) gets an
    // empty peer list; a heartbeat answers no list either, so this is the like-for-like comparison.
    const lonePath = `/announce?info_hash=${urlBytes(Buffer.from(random.hex64().slice(0, 40), 'hex'))}&peer_id=${urlBytes(Buffer.from('-PD0001-lonelonelone'))}&port=6882&uploaded=0&downloaded=0&left=0&compact=1&numwant=50`
    const announcePath = `/announce?info_hash=${urlBytes(infoHashes[0] as Buffer)}&peer_id=${urlBytes(Buffer.from('-PD0001-benchbenchbe'))}&port=6881&uploaded=0&downloaded=0&left=0&compact=1&numwant=50`

    // One peer per connection, as on a real network (a peer beats every third of its lease, so
    // concurrent heartbeats come from different peers); each sends Content-Length: 0 as fetch() does.
    const sessions: string[] = []
    for (let i = 2; i < 2 + CONNECTIONS; i++) {
      const response = await fetch(`${base}/v1/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          username: `peer${i + 1}`,
          password: seeded.password,
          url: `http://127.0.0.1:${20001 + i}`,
        }),
      })
      sessions.push(((await response.json()) as { token: string }).token)
    }
    let connection = 0
    const routes: Record<
      'announce' | 'loneAnnounce' | 'heartbeat' | 'byName' | 'byHash',
      (seconds?: number) => Promise<Run>
    > = {
      announce: (seconds = round) =>
        cannon(trackerPid, { url: `${trackerBase}${announcePath}`, duration: seconds }),
      loneAnnounce: (seconds = round) =>
        cannon(trackerPid, { url: `${trackerBase}${lonePath}`, duration: seconds }),
      heartbeat: (seconds = round) =>
        cannon(directoryPid, {
          url: `${base}/v1/heartbeat`,
          method: 'POST',
          headers: { 'content-length': '0' },
          setupClient: (client) =>
            client.setHeaders({
              authorization: `Bearer ${sessions[connection++ % sessions.length]}`,
              'content-length': '0',
            }),
          duration: seconds,
        }),
      byName: (seconds = round) =>
        cannon(directoryPid, {
          url: `${base}/v1/search?q=${encodeURIComponent('zephyr yellow')}`,
          duration: seconds,
        }),
      byHash: (seconds = round) =>
        cannon(directoryPid, { url: `${base}/v1/search?sha256=${seeded.popular[0]}`, duration: seconds }),
    }
    // Rounds alternate between the routes: this VM's speed drifts by a factor of two within minutes,
    // which one long run per route turned into ratios of 0.9x or 1.5x for the same code.
    const rounds: Record<keyof typeof routes, Run[]> = {
      announce: [],
      loneAnnounce: [],
      heartbeat: [],
      byName: [],
      byHash: [],
    }
    // One untimed second of each route first: the round that came first paid for the JIT and the page
    // cache (its heartbeats cost 1.6 times the next rounds').
    for (const warm of Object.values(routes)) await warm(1)
    for (let r = 1; r <= ROUNDS; r++) {
      for (const [name, run] of Object.entries(routes) as [keyof typeof routes, () => Promise<Run>][]) {
        const result = await run()
        rounds[name].push(result)
        log(
          `${name}, round ${r} of ${ROUNDS}: ${Math.round(result.reqPerSec)} req/s, ${Math.round(result.serverCpuUs)} µs of server CPU each`,
        )
      }
    }
    const announce = medianRun(rounds.announce)
    const loneAnnounce = medianRun(rounds.loneAnnounce)
    const heartbeat = medianRun(rounds.heartbeat)
    const byName = medianRun(rounds.byName)
    const byHash = medianRun(rounds.byHash)
    log('directory login ...')
    // Ten peers logging in again and again, one per connection: one name logged in ten times at once
    // from one address would meet the login throttle, which admits only so many unfinished checks.
    let loginConnection = 0
    const logins = await cannon(directoryPid, {
      url: `${base}/v1/login`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      setupClient: (client) => {
        const i = 100 + loginConnection++
        client.setBody(
          JSON.stringify({
            username: `peer${i}`,
            password: seeded.password,
            url: `http://127.0.0.1:${20000 + i}`,
          }),
        )
      },
      connections: 10,
      duration,
    })
    log('directory index PUT of 10,000 files, each time another index, then the last again ...')
    const puts = quick ? 5 : 20
    const indexes = Array.from({ length: puts }, () =>
      JSON.stringify({
        files: Array.from({ length: 10_000 }, () => ({
          name: random.fileName(),
          size: 1,
          sha256: random.hex64(),
          chunkSize: 1_048_576,
          manifest: random.hex64(),
        })),
      }),
    )
    let nextIndex = 0
    const put = await cannon(directoryPid, {
      url: `${base}/v1/index`,
      method: 'PUT',
      headers: auth,
      connections: 1,
      amount: puts,
      requests: [{ setupRequest: (request) => ({ ...request, body: indexes[nextIndex++ % puts] }) }],
    })
    // What every login of a peer sends: its whole index, most often the one it sent before.
    const republish = await cannon(directoryPid, {
      url: `${base}/v1/index`,
      method: 'PUT',
      headers: auth,
      body: indexes[puts - 1],
      connections: 1,
      amount: puts,
    })
    const directoryRss = await peakRssMiB(directoryPid)

    const row = (
      name: string,
      run: Run,
      alternative?: Run,
      versus = 'bittorrent-tracker announce',
    ): Figure[] => [
      {
        key: `directory_${name}_requests_per_second`,
        value: Math.round(run.reqPerSec),
        unit: 'req/s',
        ...(alternative ? { versus, ratio: run.reqPerSec / alternative.reqPerSec } : {}),
      },
      { key: `directory_${name}_latency_p50`, value: run.p50, unit: 'ms' },
      { key: `directory_${name}_latency_p99`, value: run.p99, unit: 'ms' },
      {
        key: `directory_${name}_server_cpu_per_request`,
        value: Math.round(run.serverCpuUs),
        unit: 'µs',
        // Less is better: the ratio is the announce's CPU per request over this route's.
        ...(alternative ? { versus, ratio: alternative.serverCpuUs / run.serverCpuUs } : {}),
      },
    ]
    figures.push(
      { key: 'directory_indexed_files', value: seeded.files, unit: 'files' },
      { key: 'directory_indexed_peers', value: seeded.peers, unit: 'peers' },
      ...row('heartbeat', heartbeat, announce),
      ...row(
        'heartbeat_vs_lone',
        heartbeat,
        loneAnnounce,
        'bittorrent-tracker announce, peer alone on its hash',
      ),
      ...row('search_by_name', byName, announce),
      ...row('search_by_hash', byHash, announce),
      ...row('login', logins),
      ...row('index_put_10k', put),
      ...row('index_put_10k_unchanged', republish),
      { key: 'tracker_announce_requests_per_second', value: Math.round(announce.reqPerSec), unit: 'req/s' },
      { key: 'tracker_announce_latency_p99', value: announce.p99, unit: 'ms' },
      {
        key: 'tracker_lone_announce_requests_per_second',
        value: Math.round(loneAnnounce.reqPerSec),
        unit: 'req/s',
      },
      { key: 'tracker_announce_server_cpu_per_request', value: Math.round(announce.serverCpuUs), unit: 'µs' },
      { key: 'directory_peak_rss_under_load', value: Math.round(directoryRss), unit: 'MiB' },
    )
    const runs = { announce, loneAnnounce, heartbeat, byName, byHash, logins, put, republish }
    const failed = Object.entries(runs).filter(([, r]) => r.non2xx + r.errors > 0)
    figures.push({
      key: 'directory_bench_failed_requests',
      value: failed.reduce((n, [, r]) => n + r.non2xx + r.errors, 0),
      unit: 'requests',
      ...(failed.length > 0
        ? { note: failed.map(([name, r]) => `${name}: ${r.non2xx} non-2xx, ${r.errors} errors`).join('; ') }
        : {}),
    })
  } finally {
    directory.child.kill('SIGKILL')
    tracker.child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
  return figures
}
