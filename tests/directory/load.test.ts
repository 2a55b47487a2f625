import { createClient } from '@libsql/client'
import { afterAll, describe, expect, it } from 'vitest'
import { rssMiB, runDirectoryLoad } from '../support/directory-load.ts'
import { type DirectoryProcess, startDirectoryProcess } from '../support/directory-process.ts'

let directory: DirectoryProcess | undefined
afterAll(async () => {
  await directory?.stop('SIGKILL')
})

describe('directory under load', () => {
  // The scale a class's or a team's directory sees, 50,000 files live. `npm run soak -- --peers 200
  // --files 1000` and `npm run bench:scale` (a million files) take it further.
  it('100 peers publishing 500 files each, heartbeating and searching: nothing lost, no 5xx, memory flat', async () => {
    directory = await startDirectoryProcess({ env: { LEASE_SECONDS: '600' } })
    const pid = directory.child.pid ?? 0
    // Counted in rounds, not seconds: the rounds a loaded machine fits in a time are not the test's business.
    const load = { url: directory.url, peers: 100, filesPerPeer: 500, rounds: 2 }
    const warmup = await runDirectoryLoad({ ...load, rounds: 1 })
    const afterWarmup = await rssMiB(pid)
    const report = await runDirectoryLoad(load)
    const afterLoad = await rssMiB(pid)

    expect(warmup.serverErrors).toEqual([])
    expect(report.serverErrors).toEqual([])
    expect(Object.keys(report.byStatus)).toEqual(['200'])
    // Every peer logged in, published, and did all its rounds of heartbeat, search and index write.
    expect(report.requests).toBe(100 * 2 + 100 * 2 * 3)
    // A second round of the same load must not keep growing the process.
    // (At this scale a second round grew it 9%, 186 to 203 MiB, in three runs out of three.)
    expect(afterLoad).toBeLessThan(afterWarmup * 1.25 + 16)

    const db = createClient({ url: directory.dbUrl })
    try {
      const rows = await db.execute(
        'SELECT p.username, f.sha256 FROM files f JOIN peers p ON p.id = f.peer_id ORDER BY p.username, f.sha256',
      )
      const stored = new Map<string, string[]>()
      for (const row of rows.rows) {
        const list = stored.get(String(row.username)) ?? []
        list.push(String(row.sha256))
        stored.set(String(row.username), list)
      }
      expect(stored.size).toBe(100)
      for (const [username, published] of report.lastPublished)
        expect(stored.get(username), username).toEqual(published)
    } finally {
      db.close()
    }
    console.log(
      `load: ${report.requests} requests in ${report.seconds.toFixed(1)} s (${(report.requests / report.seconds).toFixed(0)} req/s), RSS ${afterWarmup.toFixed(0)} -> ${afterLoad.toFixed(0)} MiB, ${warmup.resent + report.resent} sent again after a keep-alive reset`,
    )
  }, 600_000)
})
