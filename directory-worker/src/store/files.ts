import type { Client, InStatement, Row } from '@libsql/client'
import type { FileEntry, Result } from '../schemas.ts'

/** Names are matched case-insensitively on a key folded in JS, which knows Unicode case. */
export const nameKey = (name: string) => name.toLowerCase()

const entriesJson = (files: FileEntry[]) =>
  JSON.stringify(
    files.map((file) => ({
      sha256: file.sha256,
      name: file.name,
      key: nameKey(file.name),
      size: file.size,
      chunkSize: file.chunkSize,
      manifest: file.manifest,
    })),
  )

// One set-based upsert for any number of entries; rows whose content is unchanged are not rewritten.
const upsertFromJson = `
  INSERT INTO files (peer_id, sha256, name, name_key, size, chunk_size, manifest)
  SELECT ?1, value ->> '$.sha256', value ->> '$.name', value ->> '$.key', value ->> '$.size',
         value ->> '$.chunkSize', value ->> '$.manifest'
  FROM json_each(?2) WHERE true
  ON CONFLICT (peer_id, sha256) DO UPDATE SET
    name = excluded.name, name_key = excluded.name_key, size = excluded.size,
    chunk_size = excluded.chunk_size, manifest = excluded.manifest
  WHERE files.name IS NOT excluded.name OR files.size IS NOT excluded.size
    OR files.chunk_size IS NOT excluded.chunk_size OR files.manifest IS NOT excluded.manifest`

const refreshCount: (peerId: number) => InStatement = (peerId) => ({
  sql: 'UPDATE peers SET file_count = (SELECT count(*) FROM files WHERE peer_id = ?1) WHERE id = ?1',
  args: [peerId],
})

const countOf = (peerId: number): InStatement => ({
  sql: 'SELECT file_count AS n FROM peers WHERE id = ?',
  args: [peerId],
})

export class TooManyFiles extends Error {}

/** Replaces a peer's whole index atomically; returns how many distinct contents it now shares. */
export async function replaceIndex(db: Client, peerId: number, files: FileEntry[]): Promise<number> {
  const json = entriesJson(files)
  const results = await db.batch(
    [
      {
        sql: `DELETE FROM files WHERE peer_id = ?1
              AND sha256 NOT IN (SELECT value ->> '$.sha256' FROM json_each(?2))`,
        args: [peerId, json],
      },
      { sql: upsertFromJson, args: [peerId, json] },
      refreshCount(peerId),
      countOf(peerId),
    ],
    'write',
  )
  return Number(results.at(-1)?.rows[0]?.n ?? 0)
}

/** Applies removals then additions in one transaction; refuses (and keeps the old index) past `maxFiles`. */
export async function patchIndex(
  db: Client,
  peerId: number,
  patch: { add: FileEntry[]; remove: string[] },
  maxFiles: number,
): Promise<number> {
  const tx = await db.transaction('write')
  try {
    await tx.batch([
      {
        sql: `DELETE FROM files WHERE peer_id = ?1 AND sha256 IN (SELECT value FROM json_each(?2))`,
        args: [peerId, JSON.stringify(patch.remove)],
      },
      { sql: upsertFromJson, args: [peerId, entriesJson(patch.add)] },
      refreshCount(peerId),
    ])
    const count = Number((await tx.execute(countOf(peerId))).rows[0]?.n ?? 0)
    if (count > maxFiles) {
      await tx.rollback()
      throw new TooManyFiles(`the index would hold ${count} files; the limit is ${maxFiles}`)
    }
    await tx.commit()
    return count
  } catch (err) {
    if (!tx.closed) await tx.rollback()
    throw err
  } finally {
    tx.close()
  }
}

type Content = Omit<Result, 'sources'>

const toContent = (row: Row): Content => ({
  name: String(row.name),
  size: Number(row.size),
  sha256: String(row.sha256),
  chunkSize: Number(row.chunk_size),
  manifest: String(row.manifest),
})

/** FTS5 phrase syntax: the query as one quoted string, so no operator in it is ever interpreted. */
const ftsPhrase = (text: string) => `"${text.replaceAll('"', '""')}"`

/** Upper bound of the name_key range that starts with `prefix` (for an index range scan). */
const prefixEnd = (prefix: string) => `${prefix}\u{10FFFF}`

/**
 * How many live matching rows the prefix and substring stages look at. A common word matches much
 * of a large index; ranking every match would cost time in proportion to the index, so past this
 * many a stage answers from the first matches it finds. The exact stage stays complete.
 */
const SUBSTRING_CANDIDATES = 5000

const groupByContent = (candidates: string) => `
  SELECT h.sha256, min(h.name) AS name, max(h.size) AS size, max(h.chunk_size) AS chunk_size,
    max(h.manifest) AS manifest, count(*) AS holders
  FROM (${candidates}) h
  GROUP BY h.sha256
  ORDER BY holders DESC, name
  LIMIT ?`

const live = 'JOIN peers p ON p.id = f.peer_id AND p.lease_expires_at > ?'

/**
 * Contents whose name contains `text`, offered by at least one live peer, best first: exact name,
 * then prefix, then substring; within a rank, contents with more live holders first. Each rank is
 * one indexed query (name_key index for exact and prefix, the trigram index for substrings).
 */
export async function searchByName(db: Client, text: string, now: number, limit: number): Promise<Content[]> {
  const key = nameKey(text)
  const stages: { sql: string; args: (string | number)[] }[] = [
    {
      sql: groupByContent(`SELECT f.* FROM files f ${live} WHERE f.name_key = ?`),
      args: [now, key],
    },
    {
      sql: groupByContent(
        `SELECT f.* FROM files f ${live} WHERE f.name_key > ? AND f.name_key < ? LIMIT ${SUBSTRING_CANDIDATES}`,
      ),
      args: [now, key, prefixEnd(key)],
    },
    {
      // The trigram index needs three characters; shorter queries scan names until enough match.
      sql: groupByContent(
        [...key].length >= 3
          ? `SELECT f.* FROM files_fts JOIN files f ON f.id = files_fts.rowid ${live}
             WHERE files_fts MATCH ? AND instr(f.name_key, ?) > 1 LIMIT ${SUBSTRING_CANDIDATES}`
          : `SELECT f.* FROM files f ${live} WHERE instr(f.name_key, ?) > 1 LIMIT ${SUBSTRING_CANDIDATES}`,
      ),
      args: [now, ...([...key].length >= 3 ? [ftsPhrase(key)] : []), key],
    },
  ]
  const seen = new Set<string>()
  const results: Content[] = []
  for (const stage of stages) {
    if (results.length >= limit) break
    const rows = await db.execute({ sql: stage.sql, args: [...stage.args, limit + seen.size] })
    for (const row of rows.rows) {
      const content = toContent(row)
      if (seen.has(content.sha256) || results.length >= limit) continue
      seen.add(content.sha256)
      results.push(content)
    }
  }
  return results
}

/** A content by hash, whether or not anyone live holds it now. */
export async function contentByHash(db: Client, sha256: string): Promise<Content | undefined> {
  const result = await db.execute({
    sql: `SELECT sha256, name, size, chunk_size, manifest FROM files WHERE sha256 = ?
          ORDER BY (SELECT lease_expires_at FROM peers WHERE id = peer_id) DESC LIMIT 1`,
    args: [sha256],
  })
  return result.rows[0] ? toContent(result.rows[0]) : undefined
}

export type SourceRow = { sha256: string; username: string; url: string }

/** Live holders of each content, a random sample of at most `perContent` each. */
export async function liveSources(
  db: Client,
  hashes: string[],
  now: number,
  perContent: number,
): Promise<Map<string, { username: string; url: string }[]>> {
  const sources = new Map<string, { username: string; url: string }[]>(hashes.map((hash) => [hash, []]))
  if (hashes.length === 0) return sources
  const result = await db.execute({
    sql: `SELECT sha256, username, url FROM (
            SELECT f.sha256, p.username, p.url,
              row_number() OVER (PARTITION BY f.sha256 ORDER BY random()) AS n
            FROM files f JOIN peers p ON p.id = f.peer_id
            WHERE f.sha256 IN (SELECT value FROM json_each(?1)) AND p.lease_expires_at > ?2)
          WHERE n <= ?3`,
    args: [JSON.stringify(hashes), now, perContent],
  })
  for (const row of result.rows) {
    sources.get(String(row.sha256))?.push({ username: String(row.username), url: String(row.url) })
  }
  for (const list of sources.values()) shuffle(list)
  return sources
}

/** Fisher-Yates with the platform's CSPRNG, so any live holder may come first. */
export function shuffle<T>(items: T[]): T[] {
  const random = new Uint32Array(items.length)
  crypto.getRandomValues(random)
  for (let i = items.length - 1; i > 0; i--) {
    const j = (random[i] ?? 0) % (i + 1)
    const a = items[i] as T
    items[i] = items[j] as T
    items[j] = a
  }
  return items
}
