// npm run soak [-- --seconds 600 --peers 200 --files 1000]: the directory load suite, run for as long as
// it is given, against a real directory process on loopback. Prints what it did and exits 1 on any
// failure (a 5xx, a lost or mixed index update, memory that keeps growing).

import { parseArgs } from 'node:util'
import { createClient } from '@libsql/client'
import { rssMiB, runDirectoryLoad } from './support/directory-load.ts'
import { startDirectoryProcess } from './support/directory-process.ts'

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '300' },
    peers: { type: 'string', default: '200' },
    files: { type: 'string', default: '1000' },
  },
})
const seconds = Number(values.seconds)
const peers = Number(values.peers)
const filesPerPeer = Number(values.files)

const directory = await startDirectoryProcess({ env: { LEASE_SECONDS: '600' } })
const pid = directory.child.pid ?? 0
let failures = 0
let requests = 0
const rounds: string[] = []
try {
  const started = performance.now()
  const memory: number[] = []
  let round = 0
  while ((performance.now() - started) / 1000 < seconds) {
    round++
    const left = Math.max(5, seconds - (performance.now() - started) / 1000)
    const report = await runDirectoryLoad({
      url: directory.url,
      peers,
      filesPerPeer,
      seconds: Math.min(60, left),
    })
    requests += report.requests
    failures += report.serverErrors.length
    for (const error of report.serverErrors.slice(0, 5)) console.error(`  5xx: ${error}`)
    const db = createClient({ url: directory.dbUrl })
    const rows = await db.execute(
      'SELECT p.username, f.sha256 FROM files f JOIN peers p ON p.id = f.peer_id ORDER BY p.username, f.sha256',
    )
    db.close()
    const stored = new Map<string, string[]>()
    for (const row of rows.rows) {
      const list = stored.get(String(row.username)) ?? []
      list.push(String(row.sha256))
      stored.set(String(row.username), list)
    }
    let lost = 0
    for (const [username, published] of report.lastPublished) {
      if (JSON.stringify(stored.get(username)) !== JSON.stringify(published)) lost++
    }
    failures += lost
    memory.push(await rssMiB(pid))
    rounds.push(
      `round ${round}: ${report.requests} requests in ${report.seconds.toFixed(0)} s, statuses ${JSON.stringify(report.byStatus)}, indexes wrong: ${lost}, RSS ${memory.at(-1)?.toFixed(0)} MiB`,
    )
    console.log(rounds.at(-1))
  }
  // Flat memory: the last round may not exceed the second by more than half (the first warms caches).
  const [, second] = memory
  const last = memory.at(-1) ?? 0
  if (second !== undefined && memory.length > 2 && last > second * 1.5 + 64) {
    console.error(`memory grew from ${second.toFixed(0)} to ${last.toFixed(0)} MiB`)
    failures++
  }
  console.log(
    `soak: ${seconds} s, ${peers} peers x ${filesPerPeer} files, ${requests} requests, failures: ${failures}`,
  )
} finally {
  await directory.stop('SIGKILL')
}
process.exit(failures === 0 ? 0 : 1)
