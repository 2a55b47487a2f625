// Directory cost as the index grows: search latency at N indexed files, and a 10k-entry PUT.
// Usage: node bench/directory-scale.ts [--files 1000000] [--per-peer 100]

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createClient } from '@libsql/client'
import { createApp } from '../directory-worker/src/app.ts'
import { parseSettings } from '../directory-worker/src/settings.ts'
import { FILE_CONNECTION_PRAGMAS } from '../directory-worker/src/store/file-connection.ts'
import { seededDatabase, seededRandom } from './support/seed-directory.ts'

const { values } = parseArgs({
  options: { files: { type: 'string', default: '1000000' }, 'per-peer': { type: 'string', default: '100' } },
})
const totalFiles = Number(values.files)
const perPeer = Number(values['per-peer'])
const peers = Math.ceil(totalFiles / perPeer)

const random = seededRandom(9)
const dir = mkdtempSync(join(tmpdir(), 'peerdir-bench-'))
const dbPath = join(dir, 'directory.db')
console.log(
  `seeding ${peers} peers x ${perPeer} files = ${peers * perPeer} files (or copying the cached seed) ...`,
)
const seeded = await seededDatabase(dbPath, {
  peers,
  perPeer,
  onProgress: (n) => n % 100_000 === 0 && console.log(`  ${n} files`),
})
const popular = seeded.popular
console.log(seeded.cached ? 'copied the cached seed' : `seeded in ${seeded.seconds.toFixed(1)} s`)
const db = createClient({ url: `file:${dbPath}`, concurrency: 1 })
await db.execute('PRAGMA journal_mode = WAL')
// The directory's own connection settings (its page cache among them), as `peerdir-directory` runs.
for (const pragma of FILE_CONNECTION_PRAGMAS) await db.execute(pragma)
const makeApp = () =>
  createApp({ db, settings: parseSettings({ LEASE_SECONDS: '3600' }), now: Date.now, log: () => {} })
const app = makeApp()
await app.request('/healthz')

/**
 * Repeated: the same query again and again (answers reused); first: each run a fresh app, nothing
 * reused. The fresh app has answered one /healthz first (not timed): a new app's first request
 * builds its router, checks the migrations and starts the sweep of abandoned index writes (a read of
 * every peer row), costs of starting the process, not of a query; the sweep's read is waited out
 * too (the one connection runs statements in order, so a statement after it ends after it).
 */
async function latency(label: string, path: string, runs = 200) {
  for (const mode of ['first', 'repeated'] as const) {
    const times: number[] = []
    let results = 0
    for (let i = 0; i < (mode === 'first' ? Math.min(runs, 20) : runs); i++) {
      const target = mode === 'first' ? makeApp() : app
      if (mode === 'first') {
        await target.request('/healthz')
        await db.execute('SELECT 1')
      }
      const started = performance.now()
      const response = await target.request(path)
      const body = (await response.json()) as { results?: unknown[]; files?: unknown[] }
      times.push(performance.now() - started)
      results = body.results?.length ?? body.files?.length ?? 0
    }
    times.sort((a, b) => a - b)
    const p = (q: number) => (times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? 0).toFixed(2)
    console.log(
      `${`${label} (${mode})`.padEnd(72)} p50 ${p(0.5).padStart(8)} ms  p99 ${p(0.99).padStart(8)} ms  (${results} results)`,
    )
  }
}

// A file from the middle of the index (id 12345 does not exist below that many files).
const sample = (
  await db.execute(
    'SELECT name, path, sha256 FROM files ORDER BY id LIMIT 1 OFFSET (SELECT count(*) / 2 FROM files)',
  )
).rows[0]
const exactName = String(sample?.name)
const samplePath = String(sample?.path ?? '')
await latency(`search exact name "${exactName}"`, `/v1/search?q=${encodeURIComponent(exactName)}`)
await latency(
  `search prefix "${exactName.slice(0, 13)}"`,
  `/v1/search?q=${encodeURIComponent(exactName.slice(0, 13))}`,
)
await latency(
  'search rare substring "zephyr yellow - x"',
  `/v1/search?q=${encodeURIComponent('zephyr yellow - x')}`,
)
await latency('search common word "ocean" (limit 50)', '/v1/search?q=ocean')
await latency('search 2 characters "ze" (no trigram)', '/v1/search?q=ze', 20)
await latency('search by sha256 (popular content)', `/v1/search?sha256=${popular[0]}`)

// Word and path queries (SPEC: every word in the path or the name). The seed's folders are
// `Shelf/Artist Words/Album Words (year)/Disc n`, in words of their own (seed-directory.ts).
const [, artist = '', album = ''] = samplePath.split('/')
const albumWords = album.replace(/ \(\d+\)$/, '').split(' ')
const wordQueries: [string, string][] = [
  ['two name words, not a phrase', 'ocean zephyr'],
  ['one folder word (path only)', 'harrow'],
  ['two folder words', 'kestrel orchard'],
  ['folder word + name word', 'kestrel ocean'],
  ['artist + album word (rare)', `${artist} ${albumWords[0]}`],
  ['album + name word (rare)', `${albumWords.join(' ')} ${exactName.split(' ')[0]}`],
  ['a pasted folder path', samplePath],
  ['folder path + file name', `${samplePath}/${exactName}`],
]
for (const [label, q] of wordQueries) {
  await latency(
    `words: ${label} "${q.length > 40 ? `${q.slice(0, 37)}...` : q}"`,
    `/v1/search?q=${encodeURIComponent(q)}`,
  )
}
const owner = (
  await db.execute({
    sql: 'SELECT p.username FROM peers p JOIN files f ON f.peer_id = p.id WHERE f.path = ? LIMIT 1',
    args: [samplePath],
  })
).rows[0]?.username
await latency(`browse ${owner}'s top level`, `/v1/peers/${owner}/files`)
await latency(`browse ${owner}, every file (recursive)`, `/v1/peers/${owner}/files?recursive=true`)
await latency('stats', '/v1/stats', 20)

// A 10k-entry PUT as a peer does on first publish: validation, JSON, one set-based batch.
const login = await app.request('/v1/login', {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ username: 'putter', password: 'bench-password', url: 'http://127.0.0.1:1' }),
})
const { token } = (await login.json()) as { token: string }
const putTimes: number[] = []
for (let run = 0; run < 5; run++) {
  const files = Array.from({ length: 10_000 }, (_, i) => ({
    name: `put-${run}-${i} ${random.fileName()}`,
    size: i,
    sha256: random.hex64(),
    chunkSize: 1_048_576,
    manifest: random.hex64(),
  }))
  const started = performance.now()
  const response = await app.request('/v1/index', {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ files }),
  })
  if (response.status !== 200) throw new Error(`PUT failed: ${response.status} ${await response.text()}`)
  putTimes.push(performance.now() - started)
}
putTimes.sort((a, b) => a - b)
console.log(`PUT /v1/index 10,000 new entries (replacing 10,000)      median ${putTimes[2]?.toFixed(0)} ms`)
db.close()
rmSync(dir, { recursive: true, force: true })
