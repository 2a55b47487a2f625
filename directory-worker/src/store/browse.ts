// One peer's shared files by folder (GET /v1/peers/{username}/files): a level, or a subtree in pages.

import type { InStatement, Row } from '@libsql/client'
import { belowRange } from '../folder-path.ts'
import type { FileEntry } from '../schemas.ts'
import type { Database } from './database.ts'
import { LIVE_GENERATION } from './files.ts'

export type FolderSummary = { name: string; files: number; bytes: number }

/** Where a page ended: the last row's place in (path, name, size, id) order, the files_path index's. */
export type BrowseCursor = [path: string, name: string, size: number, id: number]

export type BrowsePage = {
  /** False when nothing is shared at or below the folder (for the top: always true). */
  found: boolean
  folders: FolderSummary[]
  files: FileEntry[]
  next?: BrowseCursor
}

const OF_PEER = `peer_id = ?1 AND generation = ${LIVE_GENERATION('?1')}`
const COLUMNS = 'id, name, path, size, sha256, chunk_size, manifest'
/**
 * Rows after the cursor (?2 path, ?3 name, ?4 size, ?5 id) in the index's order: within one folder
 * by name on, below one by path on.
 */
const AFTER_IN_FOLDER = '(name, size, id) > (?3, ?4, ?5)'
const AFTER = '(path, name, size, id) > (?2, ?3, ?4, ?5)'
const ORDER = 'ORDER BY path, name, size, id LIMIT ?7'

/**
 * The folders right below `path` with how many files and bytes each holds, all levels down: the
 * peer's rows below it are read from the files_path index alone, grouped by their path first (a
 * folder's files sit together), then by the folder the path is in.
 */
const foldersBelow = (peerId: number, path: string): InStatement => {
  const { from, to } = belowRange(path)
  return {
    sql: `SELECT segment AS name, sum(n) AS files, sum(bytes) AS bytes FROM (
            SELECT CASE WHEN instr(rest, '/') > 0 THEN substr(rest, 1, instr(rest, '/') - 1) ELSE rest END
                AS segment, n, bytes
            FROM (SELECT substr(path, length(?2) + 1) AS rest, count(*) AS n, sum(size) AS bytes
                  FROM files WHERE ${OF_PEER} AND path > ?2 ${to === null ? '' : 'AND path < ?3'}
                  GROUP BY path))
          GROUP BY segment ORDER BY segment`,
    args: to === null ? [peerId, from] : [peerId, from, to],
  }
}

/** The files of one folder, or of every folder below it, after the cursor. */
const filesAt = (peerId: number, at: string, after: BrowseCursor, limit: number, below: boolean) => {
  if (!below) {
    // A cursor from below the folder (a recursive page's) has passed every file of the folder.
    const rest = after[0] === at ? AFTER_IN_FOLDER : after[0] > at ? 'false' : 'true'
    return {
      sql: `SELECT ${COLUMNS} FROM files WHERE ${OF_PEER} AND path = ?6 AND ${rest} ${ORDER}`,
      args: [peerId, ...after, at, limit],
    }
  }
  const { from, to } = belowRange(at)
  // The index seeks to the cursor's folder (or the subtree's start), then to the cursor in it.
  return {
    sql: `SELECT ${COLUMNS} FROM files WHERE ${OF_PEER} AND path >= max(?2, ?6) AND path <> ''
            ${to === null ? '' : 'AND path < ?8'} AND ${AFTER} ${ORDER}`,
    args: [peerId, ...after, from, limit, ...(to === null ? [] : [to])],
  }
}

const toEntry = (row: Row): FileEntry => ({
  name: String(row.name),
  path: String(row.path),
  size: Number(row.size),
  sha256: String(row.sha256),
  chunkSize: Number(row.chunk_size),
  manifest: String(row.manifest),
})

/**
 * A page of `path` in the peer's live index: its files by name (with `recursive`, every file at
 * and below it, by path then name), at most `limit`, after `after`; and on a level's first page the
 * folders right below it. Every statement is a range of the files_path index; the folder counts
 * read the subtree's index entries (at most the peer's file limit), the files a page's rows.
 */
export async function browseFolder(
  db: Database,
  peerId: number,
  path: string,
  options: { recursive: boolean; limit: number; after?: BrowseCursor },
): Promise<BrowsePage> {
  const { recursive, limit } = options
  const after: BrowseCursor = options.after ?? ['', '', -1, -1]
  const firstPage = options.after === undefined
  const statements: InStatement[] = [
    filesAt(peerId, path, after, limit + 1, false),
    ...(recursive ? [filesAt(peerId, path, after, limit + 1, true)] : []),
    ...(recursive || !firstPage ? [] : [foldersBelow(peerId, path)]),
    {
      sql: `SELECT EXISTS (SELECT 1 FROM files WHERE ${OF_PEER} AND path = ?2)
              OR EXISTS (SELECT 1 FROM files WHERE ${OF_PEER} AND path > ?3 AND path < ?4) AS found`,
      args: [peerId, path, `${path}/`, `${path}0`],
    },
  ]
  // One read transaction: the page, its folders and whether the folder exists agree.
  const results = await db.batch(statements, 'read')
  const rows = [...(results[0]?.rows ?? []), ...(recursive ? (results[1]?.rows ?? []) : [])].slice(
    0,
    limit + 1,
  )
  const page = rows.slice(0, limit)
  const last = page.at(-1)
  const folders =
    recursive || !firstPage
      ? []
      : (results[1]?.rows ?? []).map((row) => ({
          name: String(row.name),
          files: Number(row.files),
          bytes: Number(row.bytes),
        }))
  return {
    found: path === '' || Number(results.at(-1)?.rows[0]?.found) === 1,
    folders,
    files: page.map(toEntry),
    ...(rows.length > limit && last
      ? { next: [String(last.path), String(last.name), Number(last.size), Number(last.id)] as BrowseCursor }
      : {}),
  }
}
