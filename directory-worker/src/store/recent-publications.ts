import type { Database } from './database.ts'
import { HOLDER, splitHolder } from './files.ts'

/** A row as published: enough to match and rank it (search-since.ts) without reading it again. */
export type Published = {
  published: number
  peerId: number
  sha256: string
  name: string
  nameKey: string
  path: string
  pathKey: string
  size: number
  chunkSize: number
  manifest: string
  /** When its peer's account was made (ranking prefers the older). */
  since: number
}

/**
 * The first `limit` rows published in (after, upTo], live or not (who is live is asked when
 * answering), each with its publish number, oldest first: rows with a number of their own, and the rows a generation
 * flip published (see publish-sequence.ts).
 */
export async function publishedBetween(
  db: Database,
  after: number,
  upTo: number,
  limit: number,
): Promise<Published[]> {
  const result = await db.execute({
    sql: `SELECT json_group_array(json_array(published, peer_id, sha256, holder, name_key, path_key, size,
              chunk_size, manifest, since)) AS rows FROM (
            SELECT f.published, f.peer_id, f.sha256, ${HOLDER('f')} AS holder, f.name_key, f.path_key, f.size,
              f.chunk_size, f.manifest, p.created_at AS since
            FROM files f JOIN peers p ON p.id = f.peer_id AND f.generation = p.index_generation
            WHERE f.published > ?1 AND f.published <= ?2
            UNION ALL
            SELECT p.index_published, f.peer_id, f.sha256, ${HOLDER('f')}, f.name_key, f.path_key, f.size,
              f.chunk_size, f.manifest, p.created_at
            FROM peers p JOIN files f ON f.peer_id = p.id AND f.generation = p.index_generation
            WHERE p.index_published > ?1 AND p.index_published <= ?2 AND f.published IS NULL
            ORDER BY 1 LIMIT ?3)`,
    args: [after, upTo, limit],
  })
  const rows = JSON.parse(String(result.rows[0]?.rows ?? '[]')) as [
    number,
    number,
    string,
    string,
    string,
    string,
    number,
    number,
    string,
    number,
  ][]
  return rows.map(
    ([published, peerId, sha256, holder, nameKey, pathKey, size, chunkSize, manifest, since]) => ({
      published,
      peerId,
      sha256,
      ...splitHolder(holder),
      nameKey,
      pathKey,
      size,
      chunkSize,
      manifest,
      since,
    }),
  )
}
