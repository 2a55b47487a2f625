import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type D1Binding, d1Database } from '../../directory-worker/src/store/d1-client.ts'
import { patchIndex, TooManyFiles } from '../../directory-worker/src/store/files.ts'
import { REPLACE_PIECE_BYTES, replaceIndex } from '../../directory-worker/src/store/index-replace.ts'
import { migrate, migrations } from '../../directory-worker/src/store/migrations.ts'
import { searchByName } from '../../directory-worker/src/store/name-search.ts'
import { networkStats, registerPeer, renewSessionLeases } from '../../directory-worker/src/store/peers.ts'
import { openSession } from '../../directory-worker/src/store/sessions.ts'
import { fileEntry } from '../support/directory-app.ts'
import { openLocalD1 } from '../support/local-d1.ts'

// The store on local D1 (workerd's, as wrangler dev runs it): D1's limits are enforced here, so a
// write shaped for libSQL alone fails the way it would on Cloudflare.
let d1: Awaited<ReturnType<typeof openLocalD1>>
beforeAll(async () => {
  d1 = await openLocalD1()
}, 60_000)
afterAll(async () => {
  await d1?.close()
})

const count = async (sql: string, args: (string | number)[] = []) =>
  Number((await d1.db.execute({ sql, args })).rows[0]?.n)

describe('the store on local D1', () => {
  it('applies each migration once when several isolates migrate at the same moment', async () => {
    // Each isolate has its own app and adapter; they share only the database.
    const isolates = Array.from({ length: 4 }, () => d1.db)
    await Promise.all(isolates.map((db) => migrate(db)))
    expect(await count('SELECT count(*) AS n FROM _migrations')).toBe(migrations.length)
    expect(await count('SELECT count(DISTINCT version) AS n FROM _migrations')).toBe(migrations.length)
  })

  // Local D1 lets a little more through than the published 2,000,000 bytes; the store keeps to those.
  it('refuses a bound value well over 2 MB, as D1 does', async () => {
    await expect(
      d1.db.execute({ sql: 'SELECT length(?) AS n', args: ['x'.repeat(3_000_000)] }),
    ).rejects.toThrow(/TOOBIG|too big/)
  })

  it('replaces a 25,000-file index in pieces, and a write failing in its last piece keeps the old one and no rows of its own', {
    timeout: 240_000,
  }, async () => {
    const peer = await registerPeer(d1.db, {
      username: 'dora',
      passwordHash: 'x',
      url: 'http://127.0.0.1:1',
      now: 1,
    })
    await d1.db.execute({
      sql: 'UPDATE peers SET lease_expires_at = ? WHERE id = ?',
      args: [Date.now() + 600_000, peer.id],
    })
    // Pieces are cut by bytes, not entries: four or more of them here, as for any bigger index.
    const files = Array.from({ length: 25_000 }, (_, i) =>
      fileEntry(`take-${String(i).padStart(6, '0')}.flac`),
    )
    expect(JSON.stringify(files).length).toBeGreaterThan(4 * REPLACE_PIECE_BYTES)
    expect(await replaceIndex(d1.db, peer.id, files)).toBe(25_000)
    const found = await searchByName(d1.db, 'take-024999', Date.now(), 10)
    expect(found.contents.map((content) => content.name)).toEqual(['take-024999.flac'])

    // Half the old index replaced by new names, and one entry that cannot be stored sorted last
    // (its hash is the greatest), so the pieces before it have run when it fails.
    const broken = { ...fileEntry('broken'), sha256: 'f'.repeat(64), manifest: null as unknown as string }
    const next = [
      ...files.slice(0, 12_500),
      ...files.slice(12_500).map((file) => ({ ...file, name: `new-${file.name}` })),
      broken,
    ]
    await expect(replaceIndex(d1.db, peer.id, next)).rejects.toThrow(/NOT NULL/)
    expect(await count('SELECT count(*) AS n FROM files WHERE peer_id = ?', [peer.id])).toBe(25_000)
    expect(await count("SELECT count(*) AS n FROM files WHERE name LIKE 'new-%'")).toBe(0)
    expect(await count('SELECT file_count AS n FROM peers WHERE id = ?', [peer.id])).toBe(25_000)
  })

  it('refuses a PATCH past the limit within its batch and keeps the index (D1 has no BEGIN)', async () => {
    await expect(d1.db.execute('BEGIN')).rejects.toThrow()
    const peer = await registerPeer(d1.db, {
      username: 'pat',
      passwordHash: 'x',
      url: 'http://127.0.0.1:2',
      now: 1,
    })
    expect(await patchIndex(d1.db, peer.id, { add: [fileEntry('a'), fileEntry('b')], remove: [] }, 2)).toBe(2)
    const over = patchIndex(d1.db, peer.id, { add: [fileEntry('c')], remove: [fileEntry('a').sha256] }, 1)
    await expect(over).rejects.toBeInstanceOf(TooManyFiles)
    expect(await count('SELECT count(*) AS n FROM files WHERE peer_id = ?', [peer.id])).toBe(2)
    expect(await patchIndex(d1.db, peer.id, { add: [], remove: [fileEntry('a').sha256] }, 1)).toBe(1)
  })

  it('writes the rows the README bills: 1 per heartbeat, 10 per new file (12 once counted in the totals), none per unchanged file re-published', async () => {
    const meter = rowsWrittenOf(d1.binding)
    const db = d1Database(meter.binding)
    await migrate(db)
    const peer = await registerPeer(db, {
      username: 'bill',
      passwordHash: 'x',
      url: 'http://127.0.0.1:3',
      now: 1,
    })
    await openSession(db, 'bill-session', peer.id, 1)
    const beat = () => meter.during(() => renewSessionLeases(db, ['bill-session'], Date.now(), 60))
    // Coming back up changes search answers (the search generation moves too); a running lease renewed is the peer row alone.
    expect(await beat()).toBe(2)
    expect(await beat()).toBe(1)

    // Per new file: its row, its index entries (folders' and the publish order's too), the name
    // search's, the words search's (names and paths) and the search generation's rows; per write: the
    // peer's file count, also when nothing changed, and the publish sequence when something was published.
    const PER_FILE = 10
    const files = Array.from({ length: 50 }, (_, i) => fileEntry(`invoice-${i}.pdf`))
    expect(await meter.during(() => replaceIndex(db, peer.id, files))).toBe(50 * PER_FILE + 2)
    expect(await meter.during(() => replaceIndex(db, peer.id, files))).toBe(1)
    const oneMore = { add: [fileEntry('invoice-50.pdf')], remove: [] }
    expect(await meter.during(() => patchIndex(db, peer.id, oneMore, 1000))).toBe(PER_FILE + 2)
    // Once a stats read has counted the peer (up) in the network totals, a new content also writes
    // its row there and the totals' row.
    await networkStats(db, Date.now())
    const another = { add: [fileEntry('invoice-51.pdf')], remove: [] }
    expect(await meter.during(() => patchIndex(db, peer.id, another, 1000))).toBe(PER_FILE + 4)
  })
})

/**
 * The binding with D1's own count of rows written (`meta.rows_written`, what Cloudflare bills) summed
 * over every statement that goes through it, batches included.
 */
function rowsWrittenOf(binding: D1Binding) {
  type Statement = ReturnType<D1Binding['prepare']>
  const inner = new WeakMap<object, Statement>()
  let rows = 0
  const counted = (result: Awaited<ReturnType<Statement['all']>>) => {
    const written = (result.meta as { rows_written?: number } | undefined)?.rows_written
    if (typeof written !== 'number') throw new Error('D1 answered no meta.rows_written')
    rows += written
    return result
  }
  const wrap = (statement: Statement): Statement => {
    const wrapped: Statement = {
      bind: (...values) => wrap(statement.bind(...values)),
      all: async () => counted(await statement.all()),
    }
    inner.set(wrapped, statement)
    return wrapped
  }
  return {
    binding: {
      prepare: (sql: string) => wrap(binding.prepare(sql)),
      batch: async (statements: Statement[]) =>
        (await binding.batch(statements.map((statement) => inner.get(statement) ?? statement))).map(counted),
    } satisfies D1Binding,
    /** Rows written while `work` ran. */
    async during(work: () => Promise<unknown>): Promise<number> {
      const before = rows
      await work()
      return rows - before
    },
  }
}
