// Saved searches re-run with `since` (issue 29): the directory's CPU for one re-run a minute after
// the last, at a million indexed files with a minute of publishing in between, beside a full
// re-search of the same queries. Its own entry: `npm run bench -- --only saved-searches`.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cpuSeconds } from './support/cpu.ts'
import { spawnUntil } from './support/processes.ts'
import type { Figure } from './support/report.ts'
import { seededDatabase, seededRandom } from './support/seed-directory.ts'

/** The load of the issue: 10,000 saved searches, each re-run once a minute. */
const SAVED_SEARCHES = 10_000
const RERUNS_PER_SECOND = SAVED_SEARCHES / 60
/** A minute of publishing: this many peers each add this many new files, as many log in unchanged. */
const PUBLISHERS = 50
const NEW_FILES_EACH = 20
const CONCURRENCY = 8

const words = ['alpha', 'bravo', 'cosmic', 'delta', 'echo', 'golden', 'harbor', 'lunar', 'night', 'zephyr']
const exts = ['mp3', 'flac', 'mkv', 'pdf']

/** Distinct queries as people save them: two words and a kind of file ("artist album flac"). */
function queries(count: number): string[] {
  const all: string[] = []
  for (const a of words)
    for (const b of words) for (const ext of exts) if (a !== b) all.push(`${a} ${b} ${ext}`)
  // Each spelt with its own limit too, so that no full re-search is a cached answer.
  return Array.from(
    { length: count },
    (_, i) => `q=${encodeURIComponent(all[i % all.length] ?? '')}&limit=${50 - Math.floor(i / all.length)}`,
  )
}

/** Server CPU-microseconds per request for `paths` asked CONCURRENCY at a time. */
async function cpuPerRequest(
  pid: number,
  base: string,
  paths: string[],
): Promise<{ us: number; results: number }> {
  let next = 0
  let results = 0
  const before = await cpuSeconds(pid)
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < paths.length) {
        const response = await fetch(`${base}${paths[next++]}`)
        if (response.status !== 200)
          throw new Error(`search answered ${response.status}: ${await response.text()}`)
        results += ((await response.json()) as { results: unknown[] }).results.length
      }
    }),
  )
  return { us: (((await cpuSeconds(pid)) - before) * 1e6) / paths.length, results: results / paths.length }
}

export async function benchSavedSearches(options: {
  quick: boolean
  log: (line: string) => void
}): Promise<Figure[]> {
  const { quick, log } = options
  const peers = quick ? 1000 : 10_000
  const dir = mkdtempSync(join(tmpdir(), 'peerdir-bench-since-'))
  const dbPath = join(dir, 'directory.db')
  log(`seeding ${peers} peers x 100 files (or copying the cached seed) ...`)
  const seeded = await seededDatabase(dbPath, { peers, perPeer: 100 })
  const directory = await spawnUntil(
    ['dist/peerdir-directory.js', '--port', '0', '--db', `file:${dbPath}`],
    /listening on (http:\/\/\S+)/,
    { LEASE_SECONDS: '3600' },
  )
  const base = directory.match[1] ?? ''
  const pid = directory.child.pid ?? 0
  try {
    const login = async (n: number) => {
      const response = await fetch(`${base}/v1/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          username: `peer${n}`,
          password: seeded.password,
          url: `http://127.0.0.1:${20000 + n}`,
        }),
      })
      return ((await response.json()) as { token: string }).token
    }
    const start = (await (await fetch(`${base}/v1/search?q=alpha`)).json()) as { cursor: string }
    log(
      `a minute of publishing: ${PUBLISHERS} peers add ${NEW_FILES_EACH} files each, ${PUBLISHERS} log in unchanged ...`,
    )
    const random = seededRandom(29)
    for (let n = 1; n <= PUBLISHERS; n++) {
      const token = await login(n)
      const add = Array.from({ length: NEW_FILES_EACH }, () => ({
        name: random.fileName(),
        size: 1,
        sha256: random.hex64(),
        chunkSize: 1_048_576,
        manifest: random.hex64(),
      }))
      const patch = await fetch(`${base}/v1/index`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ add, remove: [] }),
      })
      if (patch.status !== 200) throw new Error(`PATCH answered ${patch.status}`)
    }
    for (let n = PUBLISHERS + 1; n <= 2 * PUBLISHERS; n++) await login(n)

    const count = quick ? 1000 : 3000
    const saved = queries(count)
    log(
      `${count} saved searches re-run with since, then ${count / 3} full re-searches of the same queries ...`,
    )
    const { us: since, results: found } = await cpuPerRequest(
      pid,
      base,
      saved.map((query) => `/v1/search?${query}&since=${start.cursor}`),
    )
    // The floor: the same requests when nothing was published since (HTTP, validation, one read).
    const now = (await (await fetch(`${base}/v1/search?q=alpha`)).json()) as { cursor: string }
    const { us: upToDate } = await cpuPerRequest(
      pid,
      base,
      saved.map((query) => `/v1/search?${query}&since=${now.cursor}`),
    )
    const { us: full } = await cpuPerRequest(
      pid,
      base,
      saved.slice(0, count / 3).map((query) => `/v1/search?${query}`),
    )
    const share = (us: number) => (us * RERUNS_PER_SECOND) / 1e4
    log(
      `${found.toFixed(2)} new results per re-run; nothing new: ${upToDate.toFixed(0)} µs; since: ${since.toFixed(0)} µs of server CPU each (${share(since).toFixed(2)}% of a core at ${RERUNS_PER_SECOND.toFixed(0)}/s); full: ${full.toFixed(0)} µs (${share(full).toFixed(1)}%)`,
    )
    return [
      { key: 'saved_search_indexed_files', value: seeded.files, unit: 'files' },
      { key: 'saved_search_since_server_cpu_per_request', value: Math.round(since), unit: 'µs' },
      { key: 'saved_search_nothing_new_server_cpu_per_request', value: Math.round(upToDate), unit: 'µs' },
      { key: 'saved_search_full_server_cpu_per_request', value: Math.round(full), unit: 'µs' },
      {
        key: 'saved_searches_10k_per_minute_since_core_share',
        value: Number(share(since).toFixed(2)),
        unit: '% of a core',
        versus: 'full re-search',
        ratio: since / full,
      },
      {
        key: 'saved_searches_10k_per_minute_full_core_share',
        value: Number(share(full).toFixed(1)),
        unit: '% of a core',
      },
    ]
  } finally {
    const exited = new Promise((resolve) => directory.child.once('exit', resolve))
    directory.child.kill()
    await exited
    rmSync(dir, { recursive: true, force: true })
  }
}
