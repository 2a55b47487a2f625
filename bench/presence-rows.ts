// D1 rows written by heartbeating peers, before (leases stored in D1, every heartbeat a write) and after
// (leases in the PresenceShard Durable Objects), from D1's own meta.rows_written, scaled to 1,000 peers
// beating every 20 s for an hour. Before: the app over wrangler's local D1 (platform proxy) with the
// stored leases; after: `wrangler dev` (local D1 and local Durable Objects), read from /metrics.
// Usage: node --import tsx bench/presence-rows.ts [--peers 100] [--rounds 3]

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { getPlatformProxy } from 'wrangler'
import { createApp } from '../directory-worker/src/app.ts'
import { STORED_LEASE_SECONDS } from '../directory-worker/src/services/presence.ts'
import { parseSettings } from '../directory-worker/src/settings.ts'
import { type D1Binding, d1Database } from '../directory-worker/src/store/d1-client.ts'
import { startWranglerDev } from '../tests/support/wrangler-dev.ts'

const { values } = parseArgs({
  options: { peers: { type: 'string', default: '100' }, rounds: { type: 'string', default: '3' } },
})
const peers = Number(values.peers)
const rounds = Number(values.rounds)
const BEATS_PER_HOUR = 3600 / 20
const SCALE = 1000

type Call = (path: string, init?: { method?: string; token?: string; json?: unknown }) => Promise<Response>
const requestInit = (init: { method?: string; token?: string; json?: unknown }) => ({
  method: init.method ?? 'GET',
  headers: {
    ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}),
    ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
  },
  body: init.json !== undefined ? JSON.stringify(init.json) : undefined,
})

async function loginAll(call: Call) {
  const tokens: string[] = []
  for (let i = 0; i < peers; i++) {
    const answer = await call('/v1/login', {
      method: 'POST',
      json: { username: `peer${i}`, password: 'bench password', url: `http://127.0.0.1:${20000 + i}` },
    })
    if (answer.status !== 200) throw new Error(`login ${i}: ${answer.status} ${await answer.text()}`)
    tokens.push(((await answer.json()) as { token: string }).token)
  }
  return tokens
}

/** Rows written per heartbeat over `rounds` heartbeats of every peer. */
async function perHeartbeat(call: Call, tokens: string[], rowsWritten: () => Promise<number>) {
  const before = await rowsWritten()
  for (let round = 0; round < rounds; round++) {
    for (const token of tokens) {
      const beat = await call('/v1/heartbeat', { method: 'POST', token })
      if (beat.status !== 200) throw new Error(`heartbeat: ${beat.status}`)
    }
  }
  return ((await rowsWritten()) - before) / (rounds * tokens.length)
}

// Before: the lease as the row's column (StoredLeases), on wrangler's local D1.
const state = mkdtempSync(join(tmpdir(), 'peerdir-rows-'))
const proxy = await getPlatformProxy<{ DB: D1Binding }>({ persist: { path: join(state, 'proxy') } })
let storedRows = 0
const app = createApp({
  db: d1Database(proxy.env.DB, (rows) => {
    storedRows += rows
  }),
  settings: parseSettings({ LEASE_SECONDS: '60' }),
  now: Date.now,
  log: () => {},
})
const inProcess: Call = async (path, init = {}) => app.request(path, requestInit(init))
const storedTokens = await loginAll(inProcess)
const stored = await perHeartbeat(inProcess, storedTokens, async () => storedRows)
await proxy.dispose()

// After: Durable Object shards in wrangler dev; the shards write D1 at transitions and once an hour.
const worker = await startWranglerDev({ LEASE_SECONDS: '60' }, join(state, 'wrangler'))
try {
  const overHttp: Call = (path, init = {}) => fetch(`${worker.url}${path}`, requestInit(init))
  const metric = async () =>
    Number(/^peerdir_d1_rows_written_total (\d+)$/m.exec(await (await overHttp('/metrics')).text())?.[1])
  const beforeLogins = await metric()
  const shardTokens = await loginAll(overHttp)
  const perLogin = ((await metric()) - beforeLogins) / peers
  const sharded = await perHeartbeat(overHttp, shardTokens, metric)
  // A live peer's only write between transitions: the stored lease renewed an hour ahead, the same
  // statement a stored-lease heartbeat runs, so the same rows.
  const renewalsPerHour = 3600 / STORED_LEASE_SECONDS
  const after = SCALE * (sharded * BEATS_PER_HOUR + stored * renewalsPerHour)
  const beforeHour = SCALE * stored * BEATS_PER_HOUR
  console.log(`${peers} peers x ${rounds} heartbeats each, rows from D1 meta.rows_written:`)
  console.log(`  stored leases (before): ${stored.toFixed(2)} rows per heartbeat`)
  console.log(
    `  Durable Object shards (after): ${sharded.toFixed(2)} rows per heartbeat, ${perLogin.toFixed(1)} per login`,
  )
  console.log(`1,000 peers beating every 20 s, rows written per hour:`)
  console.log(`  before ${beforeHour.toLocaleString('en')}   after ${after.toLocaleString('en')}`)
} finally {
  await worker.stop()
  rmSync(state, { recursive: true, force: true })
}
