// Directory cost as the index grows: search latency at N indexed files, and a 10k-entry PUT.
// Usage: node bench/directory-scale.ts [--files 1000000] [--per-peer 100]

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createClient } from '@libsql/client'
import { createApp } from '../directory-worker/src/app.ts'
import { hashPassword } from '../directory-worker/src/auth/passwords.ts'
import { parseSettings } from '../directory-worker/src/settings.ts'
import { replaceIndex } from '../directory-worker/src/store/files.ts'

const { values } = parseArgs({
  options: { files: { type: 'string', default: '1000000' }, 'per-peer': { type: 'string', default: '100' } },
})
const totalFiles = Number(values.files)
const perPeer = Number(values['per-peer'])
const peers = Math.ceil(totalFiles / perPeer)

const words = [
  'alpha',
  'bravo',
  'cosmic',
  'delta',
  'echo',
  'foxtrot',
  'golden',
  'harbor',
  'island',
  'jungle',
  'kilo',
  'lunar',
  'meadow',
  'night',
  'ocean',
  'prism',
  'quartz',
  'river',
  'solar',
  'tango',
  'umbra',
  'velvet',
  'winter',
  'xenon',
  'yellow',
  'zephyr',
]
const exts = ['mp3', 'flac', 'mkv', 'pdf', 'iso', 'epub', 'zip', 'ogg']
let seed = 42
const random = () => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
  return seed / 2 ** 32
}
const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)] as T
const hex64 = () =>
  Array.from({ length: 8 }, () =>
    Math.floor(random() * 2 ** 32)
      .toString(16)
      .padStart(8, '0'),
  ).join('')

const dir = mkdtempSync(join(tmpdir(), 'peerdir-bench-'))
const db = createClient({ url: `file:${join(dir, 'directory.db')}` })
await db.execute('PRAGMA journal_mode = WAL')
const app = createApp({
  db,
  settings: parseSettings({ LEASE_SECONDS: '3600' }),
  now: Date.now,
  log: () => {},
})
await app.request('/healthz')

console.log(`seeding ${peers} peers x ${perPeer} files = ${peers * perPeer} files ...`)
const seedStart = performance.now()
const passwordHash = await hashPassword('bench-password')
const now = Date.now()
await db
  .execute({
    sql: `INSERT INTO peers (username, password_hash, url, lease_expires_at, last_seen, created_at)
        SELECT 'peer' || value, ?, 'http://127.0.0.1:' || (20000 + value), ?, ?, ? FROM generate_series(1, ?)`,
    args: [passwordHash, now + 3_600_000, now, now, peers],
  })
  .catch(async () => {
    // generate_series is an extension; fall back to a recursive CTE.
    await db.execute({
      sql: `WITH RECURSIVE n(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM n WHERE value < ?)
          INSERT INTO peers (username, password_hash, url, lease_expires_at, last_seen, created_at)
          SELECT 'peer' || value, ?, 'http://127.0.0.1:' || (20000 + value), ?, ?, ? FROM n`,
      args: [peers, passwordHash, now + 3_600_000, now, now],
    })
  })
const popular = Array.from({ length: 1000 }, hex64)
for (let p = 1; p <= peers; p++) {
  const files = Array.from({ length: perPeer }, (_, i) => {
    // Every tenth file is one of 1,000 popular contents that many peers share.
    const shared = i % 10 === 0
    const sha256 = shared ? (popular[Math.floor(random() * popular.length)] ?? hex64()) : hex64()
    return {
      name: `${pick(words)} ${pick(words)} - ${pick(words)} ${Math.floor(random() * 10000)}.${pick(exts)}`,
      size: Math.floor(random() * 5e8),
      sha256,
      chunkSize: 1_048_576,
      manifest: hex64(),
    }
  })
  await replaceIndex(db, p, files)
  if (p % 1000 === 0)
    console.log(`  ${p * perPeer} files (${((performance.now() - seedStart) / 1000).toFixed(0)} s)`)
}
console.log(`seeded in ${((performance.now() - seedStart) / 1000).toFixed(1)} s`)

async function latency(label: string, path: string, runs = 200) {
  const times: number[] = []
  let results = 0
  for (let i = 0; i < runs; i++) {
    const started = performance.now()
    const response = await app.request(path)
    const body = (await response.json()) as { results?: unknown[] }
    times.push(performance.now() - started)
    results = body.results?.length ?? 0
  }
  times.sort((a, b) => a - b)
  const p = (q: number) => (times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? 0).toFixed(2)
  console.log(
    `${label.padEnd(44)} p50 ${p(0.5).padStart(8)} ms  p99 ${p(0.99).padStart(8)} ms  (${results} results)`,
  )
}

const sample = (await db.execute('SELECT name, sha256 FROM files WHERE id = 12345')).rows[0]
const exactName = String(sample?.name)
await latency(`search exact name "${exactName}"`, `/v1/search?q=${encodeURIComponent(exactName)}`)
await latency(
  'search rare substring "zephyr yellow - x"',
  `/v1/search?q=${encodeURIComponent('zephyr yellow - x')}`,
)
await latency('search common word "ocean" (limit 50)', '/v1/search?q=ocean')
await latency('search 2 characters "ze" (no trigram)', '/v1/search?q=ze', 20)
await latency('search by sha256 (popular content)', `/v1/search?sha256=${popular[0]}`)
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
    name: `put-${run}-${i} ${pick(words)}.${pick(exts)}`,
    size: i,
    sha256: hex64(),
    chunkSize: 1_048_576,
    manifest: hex64(),
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
