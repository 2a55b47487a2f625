// A big index replace is written in committed pieces under a pending generation, then flipped live in
// one statement: other writes (heartbeats) go in between its pieces, and readers see the old index or
// the new one, whole. The app's statements pass a gate that holds or fails the write at a chosen piece,
// so what happens meanwhile is certain by construction, not by timing.
import type { InStatement } from '@libsql/client'
import Database from 'libsql'
import { afterEach, describe, expect, it } from 'vitest'
import { sweepAbandonedWrites } from '../../directory-worker/src/store/index-replace.ts'
import {
  createTestDirectory,
  fileEntry,
  login,
  publish,
  type TestDirectory,
} from '../support/directory-app.ts'

// About 250 bytes of JSON a row: several pieces of REPLACE_PIECE_BYTES.
const NEW_FILES = 12_000
const oldIndex = Array.from({ length: 40 }, (_, i) => fileEntry(`old-${i}.flac`))
const newIndex = Array.from({ length: NEW_FILES }, (_, i) => fileEntry(`new-${i}.flac`))

let directory: TestDirectory | undefined
afterEach(() => directory?.close())

type Gate = (piece: number) => Promise<void>
/**
 * A directory whose replace pieces (inserts under a pending generation) each pass `onPiece` first;
 * once `dead` is set, no statement of the app reaches the database (its process died).
 */
function gatedDirectory(onPiece: { current: Gate; dead?: boolean }, env: Record<string, string> = {}) {
  let pieces = 0
  const isPiece = (statement: InStatement) =>
    typeof statement !== 'string' &&
    statement.sql.includes('INSERT INTO files') &&
    Array.isArray(statement.args) &&
    typeof statement.args[2] === 'number'
  return createTestDirectory({ LEASE_SECONDS: '600', ...env }, async (statement) => {
    if (onPiece.dead) throw new Error('process gone')
    // Pieces are counted from 1 in each write (a write begins by taking its generation).
    if (typeof statement !== 'string' && statement.sql.includes('SET last_generation')) pieces = 0
    if (isPiece(statement)) await onPiece.current(++pieces)
  })
}

const count = async (d: TestDirectory, sql: string) => Number((await d.db.execute(sql)).rows[0]?.n)
/** What readers see of alice's index: her rows of the live generation, by name prefix. */
const visible = async (d: TestDirectory) => {
  const rows = await d.db.execute(`SELECT substr(f.name, 1, 4) AS kind, count(*) AS n
    FROM files f JOIN peers p ON p.id = f.peer_id AND f.generation = p.index_generation
    WHERE p.username = 'alice' GROUP BY kind ORDER BY kind`)
  return Object.fromEntries(rows.rows.map((row) => [String(row.kind), Number(row.n)]))
}
const allRows = (d: TestDirectory) =>
  count(d, "SELECT count(*) AS n FROM files f JOIN peers p ON p.id = f.peer_id WHERE p.username = 'alice'")
const found = async (d: TestDirectory, name: string) => {
  const answer = await d.request(`/v1/search?q=${encodeURIComponent(name)}&limit=5`)
  const { results } = (await answer.json()) as { results: { name: string }[] }
  return results.some((result) => result.name === name)
}
const replace = (d: TestDirectory, token: string, files: unknown[]) =>
  d.request('/v1/index', { method: 'PUT', token, json: { files } })

describe('a big index replace in pieces', () => {
  it('lets a heartbeat through between its pieces, answered before the write is', async () => {
    const gate: { current: Gate; dead?: boolean } = { current: async () => {} }
    const d = gatedDirectory(gate)
    directory = d
    const alice = await login(d, 'alice')
    const bob = await login(d, 'bob', { url: 'http://127.0.0.1:50052' })
    const beat = async () => {
      const started = performance.now()
      const answer = await d.request('/v1/heartbeat', { method: 'POST', token: bob })
      return { status: answer.status, ms: performance.now() - started }
    }
    const atRest = await beat()
    const events: string[] = []
    let during: { status: number; ms: number } | undefined
    gate.current = async (piece) => {
      // The first piece is committed; the write cannot end before this heartbeat is answered.
      if (piece !== 2) return
      during = await beat()
      events.push('heartbeat')
    }
    const write = await replace(d, alice, newIndex)
    events.push('write')
    expect(write.status).toBe(200)
    expect(events).toEqual(['heartbeat', 'write'])
    expect(during?.status).toBe(200)
    console.log(`heartbeat at rest ${atRest.ms.toFixed(1)} ms, during a replace ${during?.ms.toFixed(1)} ms`)
  })

  it('never holds the write lock from one piece to the next: another connection takes it at once at each', async () => {
    const gate: { current: Gate; dead?: boolean } = { current: async () => {} }
    const d = gatedDirectory(gate)
    directory = d
    const alice = await login(d, 'alice')
    await publish(d, alice, oldIndex)
    // A connection of its own with no busy timeout: a write lock still held by the replace fails it (SQLITE_BUSY).
    const other = new Database(d.dbPath, { timeout: 0 })
    const took: number[] = []
    const refused: string[] = []
    gate.current = async (piece) => {
      try {
        other.exec('BEGIN IMMEDIATE')
        other.exec('COMMIT')
        took.push(piece)
      } catch (err) {
        refused.push(`piece ${piece}: ${err instanceof Error ? err.message : err}`)
      }
    }
    try {
      expect((await replace(d, alice, newIndex)).status).toBe(200)
    } finally {
      other.close()
    }
    expect(refused).toEqual([])
    expect(took.length).toBeGreaterThanOrEqual(3)
    expect(took).toEqual(Array.from({ length: took.length }, (_, i) => i + 1))
    expect(await visible(d)).toEqual({ 'new-': NEW_FILES })
  })

  it('is seen old or new, whole, by every read between its pieces, and leaves no old rows', async () => {
    const gate: { current: Gate; dead?: boolean } = { current: async () => {} }
    const d = gatedDirectory(gate)
    directory = d
    const alice = await login(d, 'alice')
    await publish(d, alice, oldIndex)
    const seen: string[] = []
    gate.current = async () => {
      expect(await visible(d)).toEqual({ 'old-': oldIndex.length })
      expect(await found(d, 'old-7.flac')).toBe(true)
      expect(await found(d, 'new-1.flac')).toBe(false)
      seen.push(`rows ${await allRows(d)}`)
    }
    expect((await replace(d, alice, newIndex)).status).toBe(200)
    // The reads ran while pending rows were there, more of them at every piece.
    expect(seen.length).toBeGreaterThanOrEqual(3)
    expect(seen.at(-1)).not.toBe(`rows ${oldIndex.length}`)
    expect(await visible(d)).toEqual({ 'new-': NEW_FILES })
    expect(await found(d, 'old-7.flac')).toBe(false)
    expect(await found(d, 'new-1.flac')).toBe(true)
    expect(await allRows(d)).toBe(NEW_FILES)
    expect(await count(d, "SELECT file_count AS n FROM peers WHERE username = 'alice'")).toBe(NEW_FILES)
  })

  it('that fails keeps the old index and removes its rows; one whose process died is swept later', async () => {
    const gate: { current: Gate; dead?: boolean } = { current: async () => {} }
    const d = gatedDirectory(gate)
    directory = d
    const alice = await login(d, 'alice')
    await publish(d, alice, oldIndex)

    // The storage fails at the third piece: the write is refused, its rows are deleted at once.
    gate.current = async (piece) => {
      if (piece === 3) throw new Error('disk I/O error')
    }
    expect((await replace(d, alice, newIndex)).status).toBe(503)
    expect(await visible(d)).toEqual({ 'old-': oldIndex.length })
    expect(await allRows(d)).toBe(oldIndex.length)

    // The process dies at the third piece: nothing after it reaches the database.
    gate.current = async (piece) => {
      if (piece === 3) gate.dead = true
    }
    expect((await replace(d, alice, newIndex)).status).toBe(503)
    gate.dead = false
    const leftovers = (await allRows(d)) - oldIndex.length
    expect(leftovers).toBeGreaterThan(0)
    expect(await visible(d)).toEqual({ 'old-': oldIndex.length })
    expect(await found(d, 'old-7.flac')).toBe(true)
    expect(await found(d, 'new-1.flac')).toBe(false)

    // A directory starting soon after leaves them (the write might still be running elsewhere);
    // one starting after ABANDONED_AFTER_MS removes them.
    expect(await sweepAbandonedWrites(d.db, Date.now() + 60_000)).toBe(0)
    expect(await allRows(d)).toBe(oldIndex.length + leftovers)
    expect(await sweepAbandonedWrites(d.db, Date.now() + 16 * 60_000)).toBe(1)
    expect(await allRows(d)).toBe(oldIndex.length)
    expect(await visible(d)).toEqual({ 'old-': oldIndex.length })
  })

  it("that died is swept by the account's next replace too", async () => {
    const gate: { current: Gate; dead?: boolean } = { current: async () => {} }
    const d = gatedDirectory(gate)
    directory = d
    const alice = await login(d, 'alice')
    await publish(d, alice, oldIndex)
    gate.current = async (piece) => {
      if (piece === 2) gate.dead = true
    }
    expect((await replace(d, alice, newIndex)).status).toBe(503)
    gate.dead = false
    expect(await allRows(d)).toBeGreaterThan(oldIndex.length)
    gate.current = async () => {}
    const small = newIndex.slice(0, 10)
    expect((await replace(d, alice, small)).status).toBe(200)
    expect(await allRows(d)).toBe(small.length)
    expect(await visible(d)).toEqual({ 'new-': small.length })
  })

  it('as a big PATCH too: old index whole until it is applied whole, refused past the limit with no rows left', async () => {
    const gate: { current: Gate; dead?: boolean } = { current: async () => {} }
    const d = gatedDirectory(gate, { MAX_FILES_PER_PEER: String(NEW_FILES + 20) })
    directory = d
    const alice = await login(d, 'alice')
    const bob = await login(d, 'bob', { url: 'http://127.0.0.1:50052' })
    await publish(d, alice, oldIndex)
    const patch = (add: unknown[], remove: string[]) =>
      d.request('/v1/index', { method: 'PATCH', token: alice, json: { add, remove } })
    const removed = oldIndex.slice(0, 30).map((file) => file.sha256)

    // Past the limit (40 + NEW_FILES > NEW_FILES + 20 >= 10 + NEW_FILES): refused, no rows left.
    expect((await patch(newIndex, [])).status).toBe(413)
    expect(await allRows(d)).toBe(oldIndex.length)
    expect(await visible(d)).toEqual({ 'old-': oldIndex.length })

    const events: string[] = []
    gate.current = async (piece) => {
      expect(await visible(d)).toEqual({ 'old-': oldIndex.length })
      if (piece !== 2) return
      const beat = await d.request('/v1/heartbeat', { method: 'POST', token: bob })
      events.push(`heartbeat ${beat.status}`)
    }
    const answer = await patch(newIndex, removed)
    events.push('patch')
    expect(answer.status).toBe(200)
    expect(await answer.json()).toEqual({ files: 10 + NEW_FILES })
    expect(events).toEqual(['heartbeat 200', 'patch'])
    expect(await visible(d)).toEqual({ 'new-': NEW_FILES, 'old-': 10 })
    expect(await allRows(d)).toBe(10 + NEW_FILES)
    expect(await found(d, 'old-0.flac')).toBe(false)
    expect(await found(d, 'old-35.flac')).toBe(true)
  })

  it('published again unchanged writes nothing; any field changed is written', async () => {
    const gate: { current: Gate; dead?: boolean } = { current: async () => {} }
    const d = gatedDirectory(gate)
    directory = d
    const alice = await login(d, 'alice')
    let pieces = 0
    gate.current = async () => {
      pieces++
    }
    expect(await (await replace(d, alice, newIndex)).json()).toEqual({ files: NEW_FILES })
    expect(pieces).toBeGreaterThan(1)
    const generation = async () => count(d, "SELECT last_generation AS n FROM peers WHERE username = 'alice'")
    const before = await generation()

    // What a write that died left behind: a row of a pending generation nobody reads.
    await d.db.execute(`UPDATE peers SET last_generation = last_generation + 1 WHERE username = 'alice'`)
    await d.db.execute(`INSERT INTO files (peer_id, generation, sha256, name, name_key, size, chunk_size, manifest)
      SELECT id, last_generation, '${'e'.repeat(64)}', 'orphan.flac', 'orphan.flac', 1, 1048576, '${'e'.repeat(64)}'
      FROM peers WHERE username = 'alice'`)
    expect(await allRows(d)).toBe(NEW_FILES + 1)

    pieces = 0
    // In another order: the same index. Nothing is written but the leftover row is swept.
    expect(await (await replace(d, alice, [...newIndex].reverse())).json()).toEqual({ files: NEW_FILES })
    expect(pieces).toBe(0)
    expect(await generation()).toBe(before + 1)
    expect(await allRows(d)).toBe(NEW_FILES)

    // Each field of one entry changed in turn (on the index as last written): a new generation each time.
    let current = newIndex
    const changes: [number, 'manifest' | 'size' | 'chunkSize', string | number, string][] = [
      [7_000, 'manifest', 'f'.repeat(64), 'manifest'],
      [7_001, 'size', 2_000, 'size'],
      [7_002, 'chunkSize', 2_097_152, 'chunk_size'],
    ]
    for (const [step, [at, field, value, column]] of changes.entries()) {
      pieces = 0
      current = current.map((file, i) => (i === at ? { ...file, [field]: value } : file))
      expect(await (await replace(d, alice, current)).json()).toEqual({ files: NEW_FILES })
      expect(pieces, field).toBeGreaterThan(1)
      expect(await generation()).toBe(before + 2 + step)
      const stored = await d.db.execute({
        sql: `SELECT ${column} AS value FROM files f JOIN peers p ON p.id = f.peer_id AND f.generation = p.index_generation WHERE f.sha256 = ?`,
        args: [newIndex[at]?.sha256 ?? ''],
      })
      expect(stored.rows.map((row) => row.value)).toEqual([value])
      expect(await allRows(d)).toBe(NEW_FILES)
    }
  })
})
