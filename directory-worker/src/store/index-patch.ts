import type { InStatement } from '@libsql/client'
import type { Database } from './database.ts'
import { type IndexEntry, patchIndex, TooManyFiles, toStored, upsertFromJson } from './files.ts'
import { beginGeneration, oneAtATime, REPLACE_PIECE_BYTES, sweep, turn } from './index-replace.ts'
import { jsonPieces } from './json-pieces.ts'
import { INDEX_OVER_LIMIT } from './migrations.ts'
import { closePublishing, NEXT_PUBLISHED, PUBLISHED } from './publish-sequence.ts'
import { StorageError } from './storage-errors.ts'

/** Rows one statement copies from the live generation into a big patch's pending one. */
const COPY_ROWS = 1500

type Patch = { add: IndexEntry[]; remove: string[] }

/**
 * Removes then adds entries; returns how many distinct contents the peer then shares. A patch that
 * fits one piece of a replace is one short batch on the live rows (`patchIndex`). A bigger one
 * would hold the write lock as long as a big replace, so it is written as one: the live rows are
 * copied into a pending generation in pieces, the patch applied there in pieces, and the result
 * flipped live in one statement (refused past `maxFiles`, the old index then staying).
 */
export async function applyPatch(
  db: Database,
  peerId: number,
  patch: Patch,
  maxFiles: number,
  now = Date.now(),
): Promise<number> {
  const adds = jsonPieces(patch.add.map(toStored), REPLACE_PIECE_BYTES)
  const removes = jsonPieces(patch.remove, REPLACE_PIECE_BYTES)
  if (adds.length === 1 && removes.length === 1) return patchIndex(db, peerId, patch, maxFiles)
  return oneAtATime(db, () => patchInPieces(db, peerId, adds, removes, maxFiles, now))
}

async function patchInPieces(
  db: Database,
  peerId: number,
  adds: { json: string }[],
  removes: { json: string }[],
  maxFiles: number,
  now: number,
): Promise<number> {
  const { generation, live } = await beginGeneration(db, peerId, now)
  let flipped = false
  try {
    await copyRows(db, peerId, live, generation)
    for (const piece of removes) {
      await db.execute({
        sql: `DELETE FROM files WHERE peer_id = ?1 AND generation = ?2
                AND sha256 IN (SELECT value FROM json_each(?3))`,
        args: [peerId, generation, piece.json],
      })
      await turn()
    }
    for (const piece of adds) {
      await db.execute(upsertFromJson(peerId, piece.json, generation))
      await turn()
    }
    const count = await flip(db, peerId, generation, live, maxFiles)
    flipped = true
    await sweep(db, peerId, 0, generation).catch(() => {})
    return count
  } finally {
    if (!flipped) await sweep(db, peerId, generation, generation + 1).catch(() => {})
  }
}

async function copyRows(db: Database, peerId: number, from: number, to: number) {
  let after = ''
  for (;;) {
    const copied = await db.execute({
      sql: `INSERT INTO files (peer_id, generation, sha256, name, name_key, path, path_key, size, chunk_size, manifest, published)
            SELECT peer_id, ?2, sha256, name, name_key, path, path_key, size, chunk_size, manifest,
              ${PUBLISHED('files', 'p')} FROM files JOIN peers p ON p.id = files.peer_id
            WHERE peer_id = ?1 AND generation = ?3 AND sha256 > ?4 ORDER BY sha256 LIMIT ?5
            RETURNING sha256`,
      args: [peerId, to, from, after, COPY_ROWS],
    })
    if (copied.rows.length < COPY_ROWS) return
    for (const row of copied.rows) if (String(row.sha256) > after) after = String(row.sha256)
    await turn()
  }
}

/** Makes `generation` live if the live one is still the one it was copied from; its count. */
async function flip(db: Database, peerId: number, generation: number, from: number, maxFiles: number) {
  const statements: InStatement[] = [
    {
      sql: `UPDATE peers SET index_generation = ?2, index_published = ${NEXT_PUBLISHED},
              file_count = (SELECT count(*) FROM files WHERE peer_id = ?1 AND generation = ?2)
            WHERE id = ?1 AND index_generation = ?3 RETURNING file_count`,
      args: [peerId, generation, from],
    },
    closePublishing,
    { sql: 'INSERT INTO index_limit_checks (peer_id, max_files) VALUES (?, ?)', args: [peerId, maxFiles] },
  ]
  let flipped: Awaited<ReturnType<Database['batch']>>[number] | undefined
  try {
    ;[flipped] = await db.batch(statements, 'write')
  } catch (err) {
    if (err instanceof Error && err.message.includes(INDEX_OVER_LIMIT)) {
      throw new TooManyFiles(`the index would hold more than the limit of ${maxFiles} files`)
    }
    throw err
  }
  const row = flipped?.rows[0]
  // Another write replaced the index it was copied from: applied to that, it would undo it.
  if (!row) throw new StorageError(new Error('the index changed under a patch; send it again'))
  return Number(row.file_count)
}
