import { nextTurn } from '../util/next-turn.ts'
import type { Database } from './database.ts'
import { type IndexEntry, LIVE_GENERATION, toStored, upsertFromJson } from './files.ts'
import { eachJsonPiece } from './json-pieces.ts'
import { closePublishing, NEXT_PUBLISHED } from './publish-sequence.ts'
import { StorageError } from './storage-errors.ts'

/**
 * The JSON bytes of rows one piece of a replace writes, in a commit of its own (about 2,000 entries
 * of 30 MiB for 100,000, a fifth of a second on a laptop's file): the longest another write (a
 * heartbeat) waits for it. Smaller pieces cost more commits: a 100,000-entry write took 9 s in
 * pieces of 0.4 MB, 6 s in pieces of 1 MB, 4.4 s as one transaction that blocked everything.
 */
export const REPLACE_PIECE_BYTES = 700_000
/** Rows one statement deletes when old or abandoned rows are swept. */
export const SWEEP_ROWS = 5000
/** A write whose generation is still pending this long after it began is taken for abandoned. */
export const ABANDONED_AFTER_MS = 15 * 60_000

export const turn = () => new Promise<void>((resolve) => nextTurn(resolve))

/**
 * Big writes to one database take turns, whole (in this process): two writing their pieces in
 * between each other's took three times as long as one after the other. Other statements do not wait.
 */
const writing = new WeakMap<Database, Promise<unknown>>()
export function oneAtATime<T>(db: Database, write: () => Promise<T>): Promise<T> {
  const previous = writing.get(db) ?? Promise.resolve()
  const next = previous.then(write, write)
  writing.set(
    db,
    next.catch(() => {}),
  )
  return next
}

/**
 * Replaces a peer's whole index; returns how many distinct contents it now shares. One that fits in
 * a piece is one transaction (replaceInPlace). A bigger one is seen by readers as the old index whole
 * until one statement makes the new one live, then the new one whole: the new rows
 * are written in short commits (pieces) under a generation of their own that no read looks at, so
 * other writes (heartbeats) go in between, then the peer's live generation is flipped to it and the
 * old rows are deleted in pieces. A write that fails (or a process that dies) leaves the old index;
 * its rows are deleted then, or by the account's next replace, or by `sweepAbandonedWrites`.
 */
export function replaceIndex(db: Database, peerId: number, files: IndexEntry[], now = Date.now()) {
  // The last entry of a hash wins, as in an upsert; sorted, each piece appends to the hash indexes.
  const byHash = new Map(files.map((file) => [file.sha256, file]))
  const sorted = [...byHash.values()].sort((a, b) => (a.sha256 < b.sha256 ? -1 : a.sha256 > b.sha256 ? 1 : 0))
  const pieces = eachJsonPiece(sorted, REPLACE_PIECE_BYTES, toJson)
  const first = pieces.next()
  if (pieces.next().done && !first.done) return replaceInPlace(db, peerId, first.value.json)
  return oneAtATime(db, async () =>
    (await sameAsLive(db, peerId, sorted)) ? sorted.length : replaceNow(db, peerId, sorted, now),
  )
}

/**
 * Whether the peer's live index holds exactly `sorted` (distinct hashes): a peer publishes its whole
 * index at every login, so after a directory restart every peer sends what it sent before. Reading
 * that costs a few milliseconds per piece; writing it again as a new generation cost seconds. Rows an
 * earlier write left (it died, or its sweep failed) are swept then, as a replace would have.
 */
async function sameAsLive(db: Database, peerId: number, sorted: IndexEntry[]): Promise<boolean> {
  const live = await db.execute({
    sql: `SELECT p.index_generation AS generation, p.last_generation AS last,
            (SELECT count(*) FROM files WHERE peer_id = p.id AND generation = p.index_generation) AS n,
            p.last_generation > p.index_generation OR EXISTS (SELECT 1 FROM files
              WHERE peer_id = p.id AND generation < p.index_generation) AS leftovers
          FROM peers p WHERE p.id = ?`,
    args: [peerId],
  })
  const row = live.rows[0]
  if (Number(row?.n) !== sorted.length) return false
  for (const piece of eachJsonPiece(sorted, REPLACE_PIECE_BYTES, toJson)) {
    // CROSS JOIN keeps the entries outside: one lookup of the unique (peer, generation, sha256) each.
    const same = await db.execute({
      sql: `SELECT count(*) AS n FROM json_each(?3) j CROSS JOIN files f
            WHERE f.peer_id = ?1 AND f.generation = ?2 AND f.sha256 = j.value ->> '$.sha256'
              AND f.name IS j.value ->> '$.name' AND f.name_key IS j.value ->> '$.key'
              AND f.path IS j.value ->> '$.path' AND f.path_key IS j.value ->> '$.pathKey'
              AND f.size IS j.value ->> '$.size' AND f.chunk_size IS j.value ->> '$.chunkSize'
              AND f.manifest IS j.value ->> '$.manifest'`,
      args: [peerId, Number(row?.generation), piece.json],
    })
    if (Number(same.rows[0]?.n) !== piece.count) return false
  }
  if (Number(row?.leftovers) === 1) await sweep(db, peerId, 0, Number(row?.last) + 1).catch(() => {})
  return true
}

const toJson = (file: IndexEntry) => JSON.stringify(toStored(file))

/**
 * A replace of one piece (most of them: about 2,000 entries) as one short transaction on the live
 * rows: what did not change is not written (on D1, rows written are what is billed), what is gone is
 * deleted, and no generation is needed to keep readers from a half.
 */
async function replaceInPlace(db: Database, peerId: number, json: string): Promise<number> {
  const results = await db.batch(
    [
      {
        sql: `DELETE FROM files WHERE peer_id = ?1 AND generation = ${LIVE_GENERATION('?1')}
                AND sha256 NOT IN (SELECT value ->> '$.sha256' FROM json_each(?2))`,
        args: [peerId, json],
      },
      upsertFromJson(peerId, json),
      closePublishing,
      {
        sql: `UPDATE peers SET file_count = (
                SELECT count(*) FROM files WHERE peer_id = ?1 AND generation = peers.index_generation)
              WHERE id = ?1 RETURNING file_count, last_generation, index_generation`,
        args: [peerId],
      },
    ],
    'write',
  )
  const peer = results.at(-1)?.rows[0]
  // What a bigger write of this account left when its process died is never read: gone now.
  const last = Number(peer?.last_generation ?? 0)
  if (last > Number(peer?.index_generation ?? 0)) await sweep(db, peerId, 0, last + 1).catch(() => {})
  return Number(peer?.file_count ?? 0)
}

async function replaceNow(db: Database, peerId: number, sorted: IndexEntry[], now: number): Promise<number> {
  const { generation } = await beginGeneration(db, peerId, now)
  let live = false
  try {
    for (const piece of eachJsonPiece(sorted, REPLACE_PIECE_BYTES, toJson)) {
      if (piece.count === 0) continue
      await db.execute(upsertFromJson(peerId, piece.json, generation))
      await turn()
    }
    live = await flip(db, peerId, generation, sorted.length)
  } finally {
    if (!live) await sweep(db, peerId, generation, generation + 1).catch(() => {})
  }
  // What is left is never read; if this fails, the next replace or sweepAbandonedWrites removes it.
  await sweep(db, peerId, 0, generation).catch(() => {})
  return sorted.length
}

/** A new generation for a write of the peer's rows, and the one live now. */
export async function beginGeneration(
  db: Database,
  peerId: number,
  now: number,
): Promise<{ generation: number; live: number }> {
  const result = await db.execute({
    sql: `UPDATE peers SET last_generation = max(last_generation, index_generation) + 1,
            generation_started_at = ?2
          WHERE id = ?1 RETURNING last_generation, index_generation`,
    args: [peerId, now],
  })
  const row = result.rows[0]
  if (!row) throw new Error(`no peer ${peerId}`)
  return { generation: Number(row.last_generation), live: Number(row.index_generation) }
}

/**
 * Makes `generation` live if it is whole and newer than the live one. False when a newer replace
 * went live first (this one is then as if applied just before it).
 */
async function flip(db: Database, peerId: number, generation: number, count: number): Promise<boolean> {
  const [flipped, peer] = await db.batch(
    [
      {
        sql: `UPDATE peers SET index_generation = ?2, file_count = ?3, index_published = ${NEXT_PUBLISHED}
              WHERE id = ?1 AND index_generation < ?2
                AND (SELECT count(*) FROM files WHERE peer_id = ?1 AND generation = ?2) = ?3
              RETURNING id`,
        args: [peerId, generation, count],
      },
      closePublishing,
      { sql: 'SELECT index_generation FROM peers WHERE id = ?', args: [peerId] },
    ],
    'write',
  )
  if (flipped?.rows.length === 1) return true
  if (Number(peer?.rows[0]?.index_generation) > generation) return false
  // Its rows were removed under it (taken for abandoned): answered as storage trouble, to be retried.
  throw new StorageError(new Error('the index write was taken for abandoned'))
}

/** Deletes, in pieces, the peer's rows of generations in [from, below) that are not live. */
export async function sweep(db: Database, peerId: number, from: number, below: number): Promise<void> {
  for (;;) {
    const deleted = await db.execute({
      sql: `DELETE FROM files WHERE id IN (
              SELECT id FROM files WHERE peer_id = ?1 AND generation >= ?2 AND generation < ?3
                AND generation IS NOT ${LIVE_GENERATION('?1')} LIMIT ?4)
            RETURNING id`,
      args: [peerId, from, below, SWEEP_ROWS],
    })
    if (deleted.rows.length < SWEEP_ROWS) return
    await turn()
  }
}

/**
 * Deletes the rows of writes that began over ABANDONED_AFTER_MS ago and never went live (their
 * process died): run when a directory starts. Returns how many accounts had some.
 */
export async function sweepAbandonedWrites(db: Database, now: number): Promise<number> {
  const stale = await db.execute({
    sql: `SELECT id, last_generation FROM peers
          WHERE last_generation > index_generation AND generation_started_at < ?`,
    args: [now - ABANDONED_AFTER_MS],
  })
  for (const row of stale.rows) await sweep(db, Number(row.id), 0, Number(row.last_generation) + 1)
  return stale.rows.length
}
