import { copyFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from '@libsql/client'
import { createApp } from '../directory-worker/src/app.ts'
import { parseSettings } from '../directory-worker/src/settings.ts'
import { FILE_CONNECTION_PRAGMAS } from '../directory-worker/src/store/file-connection.ts'

const dir = mkdtempSync(join(tmpdir(), 'stages-'))
copyFileSync('/tmp/peerdir-bench-cache/directory-v1-10000x100.db', join(dir, 'd.db'))
const db = createClient({ url: `file:${join(dir, 'd.db')}`, concurrency: 1 })
await db.execute('PRAGMA journal_mode = WAL')
if (process.env.PRAGMAS) for (const p of FILE_CONNECTION_PRAGMAS) await db.execute(p)
await db.execute({ sql: 'UPDATE peers SET lease_expires_at = ?', args: [Date.now() + 3_600_000] })
const app = createApp({ db, settings: parseSettings({ LEASE_SECONDS: '3600' }), now: Date.now, log: () => {} })
await app.request('/healthz')
const orig = db.execute.bind(db)
const times: Record<string, number[]> = {}
let recording = false
;(db as any).execute = async (stmt: any) => {
  const sql = typeof stmt === 'string' ? stmt : stmt.sql
  const t = performance.now()
  const r = await orig(stmt)
  const key = sql.replace(/\s+/g, ' ').slice(0, 60)
  if (!recording) return r
  ;(times[key] ??= []).push(performance.now() - t)
  return r
}
const q = process.argv[2] ?? 'jungle meadow - jungle 8485.mkv'
const total: number[] = []
for (let i = 0; i < 20; i++) {
  const fresh = createApp({ db, settings: parseSettings({ LEASE_SECONDS: '3600' }), now: Date.now, log: () => {} })
  await fresh.request('/healthz')
  await orig('SELECT 1')
  recording = true
  const t = performance.now()
  await (await fresh.request(`/v1/search?q=${encodeURIComponent(q)}`)).json()
  total.push(performance.now() - t)
  recording = false
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]?.toFixed(2)
for (const [k, v] of Object.entries(times)) console.log(med(v), v.length, k)
console.log('total', med(total))
