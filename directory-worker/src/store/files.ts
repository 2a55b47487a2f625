import type { InStatement, Row } from '@libsql/client'
import type { FileEntry, Result } from '../../../contract/schemas.ts'
import { variantKey } from '../../../contract/variant.ts'
import { shuffle } from '../util/shuffle.ts'
import type { Database } from './database.ts'
import { jsonPieces } from './json-pieces.ts'
import { INDEX_OVER_LIMIT } from './migrations.ts'
import { closePublishing, NEXT_PUBLISHED, PUBLISHED } from './publish-sequence.ts'

/** Names are matched case-insensitively on a key folded in JS, which knows Unicode case. */
export const nameKey = (name: string) => name.toLowerCase()

/** An entry as the store takes it: validated, its path absent for the top (store callers of old). */
export type IndexEntry = Omit<FileEntry, 'path'> & { path?: string }

export const toStored = (file: IndexEntry) => ({
  sha256: file.sha256,
  name: file.name,
  key: nameKey(file.name),
  path: file.path ?? '',
  pathKey: nameKey(file.path ?? ''),
  size: file.size,
  chunkSize: file.chunkSize,
  manifest: file.manifest,
})

/** The generation of a peer's rows that readers see (migration 5); rows of any other are pending or old. */
export const LIVE_GENERATION = (peer: string) => `(SELECT index_generation FROM peers WHERE id = ${peer})`

/**
 * A pending row's publish number: that of the live row it repeats exactly (a copy is not news), or
 * null (published at the flip; see publish-sequence.ts).
 */
const PUBLISHED_BEFORE = `(SELECT ${PUBLISHED('l', 'p')} FROM files l JOIN peers p ON p.id = l.peer_id
    WHERE l.peer_id = ?1 AND l.generation = p.index_generation AND l.sha256 = value ->> '$.sha256'
      AND l.name IS value ->> '$.name' AND l.path IS value ->> '$.path' AND l.size IS value ->> '$.size'
      AND l.chunk_size IS value ->> '$.chunkSize' AND l.manifest IS value ->> '$.manifest')`

/**
 * One set-based upsert for any number of entries into `generation` of the peer's rows (null: the
 * live one); rows whose content is unchanged are not rewritten. Live rows written take the write's
 * publish number: the batch must end with `closePublishing`.
 */
export const upsertFromJson = (
  peerId: number,
  json: string,
  generation: number | null = null,
): InStatement => ({
  sql: `INSERT INTO files (peer_id, generation, sha256, name, name_key, path, path_key, size, chunk_size, manifest, published)
  SELECT ?1, coalesce(?3, ${LIVE_GENERATION('?1')}), value ->> '$.sha256', value ->> '$.name',
         value ->> '$.key', value ->> '$.path', value ->> '$.pathKey', value ->> '$.size',
         value ->> '$.chunkSize', value ->> '$.manifest',
         CASE WHEN ?3 IS NULL THEN ${NEXT_PUBLISHED} ELSE ${PUBLISHED_BEFORE} END
  FROM json_each(?2) WHERE true
  ON CONFLICT (peer_id, generation, sha256) DO UPDATE SET
    name = excluded.name, name_key = excluded.name_key, path = excluded.path, path_key = excluded.path_key,
    size = excluded.size, chunk_size = excluded.chunk_size, manifest = excluded.manifest,
    published = excluded.published
  WHERE files.name IS NOT excluded.name OR files.path IS NOT excluded.path OR files.size IS NOT excluded.size
    OR files.chunk_size IS NOT excluded.chunk_size OR files.manifest IS NOT excluded.manifest`,
  args: [peerId, json, generation],
})

const refreshCount: (peerId: number) => InStatement = (peerId) => ({
  sql: `UPDATE peers SET file_count = (
    SELECT count(*) FROM files WHERE peer_id = ?1 AND generation = peers.index_generation) WHERE id = ?1`,
  args: [peerId],
})

const countOf = (peerId: number): InStatement => ({
  sql: 'SELECT file_count AS n FROM peers WHERE id = ?',
  args: [peerId],
})

export class TooManyFiles extends Error {}

/**
 * Applies removals then additions to the live rows in one batch; past `maxFiles` the batch's last
 * write fails (the check in migration 4), so the whole patch is undone and the old index stays.
 */
export async function patchIndex(
  db: Database,
  peerId: number,
  patch: { add: IndexEntry[]; remove: string[] },
  maxFiles: number,
): Promise<number> {
  try {
    const results = await db.batch(
      [
        ...jsonPieces(patch.remove).map(
          (piece): InStatement => ({
            sql: `DELETE FROM files WHERE peer_id = ?1 AND generation = ${LIVE_GENERATION('?1')}
              AND sha256 IN (SELECT value FROM json_each(?2))`,
            args: [peerId, piece.json],
          }),
        ),
        ...jsonPieces(patch.add.map(toStored)).map((piece) => upsertFromJson(peerId, piece.json)),
        closePublishing,
        refreshCount(peerId),
        {
          sql: 'INSERT INTO index_limit_checks (peer_id, max_files) VALUES (?, ?)',
          args: [peerId, maxFiles],
        },
        countOf(peerId),
      ],
      'write',
    )
    return Number(results.at(-1)?.rows[0]?.n ?? 0)
  } catch (err) {
    if (err instanceof Error && err.message.includes(INDEX_OVER_LIMIT)) {
      throw new TooManyFiles(`the index would hold more than the limit of ${maxFiles} files`)
    }
    throw err
  }
}

/** One variant of a content: its sha256 with the manifest, size and chunk size its holders agree on. */
export type Content = Omit<Result, 'sources' | 'sourceCount'>

export { variantKey }

/**
 * A holder's name and path as one text (`HOLDER` in SQL), so that `min()` picks both from one row:
 * several aggregates in a query leave a bare column's row unspecified. Neither may hold a control
 * character, so \u0001 parts them unambiguously.
 */
export const HOLDER = (f: string) => `${f}.name || char(1) || ${f}.path`
export const splitHolder = (holder: unknown): { name: string; path: string } => {
  const text = String(holder ?? '')
  const at = text.indexOf('\u0001')
  return at < 0 ? { name: text, path: '' } : { name: text.slice(0, at), path: text.slice(at + 1) }
}

const toContent = (row: Row): Content => ({
  ...splitHolder(row.holder),
  size: Number(row.size),
  sha256: String(row.sha256),
  chunkSize: Number(row.chunk_size),
  manifest: String(row.manifest),
})

/** At most this many variants of one sha256 are answered (each a content with its own sources). */
export const MAX_VARIANTS = 32

/**
 * The variants of a content by hash, whether or not anyone live holds them now, in the order to try
 * them. Accounts cost nothing, so the order must not be one a flood of them can buy: each network
 * (see networkKey) ranks the variants its live holders hold (most of its holders, then the oldest
 * account), and the answer takes every network's first before any network's second (round robin),
 * so a variant only one network holds is answered unless MAX_VARIANTS other networks outrank it.
 * The variant held by the oldest live account comes first of all, so it is never left out. Within a
 * round: held from more networks, then the older account, then more holders. Variants nobody live
 * holds come last, the most recently live first.
 */
export async function variantsByHash(db: Database, sha256: string, now: number): Promise<Content[]> {
  const result = await db.execute({
    sql: `WITH holders AS (
            SELECT f.manifest, f.size, f.chunk_size, ${HOLDER('f')} AS holder, p.network, p.created_at,
              p.lease_expires_at > ?2 AS live, p.lease_expires_at AS lease
            FROM files f JOIN peers p ON p.id = f.peer_id AND f.generation = p.index_generation
            WHERE f.sha256 = ?1),
          by_network AS (
            SELECT manifest, size, chunk_size, row_number() OVER (PARTITION BY network
                ORDER BY count(*) DESC, min(created_at), manifest, size, chunk_size) AS place
            FROM holders WHERE live GROUP BY network, manifest, size, chunk_size),
          rounds AS (
            SELECT manifest, size, chunk_size, min(place) AS round FROM by_network
            GROUP BY manifest, size, chunk_size),
          variants AS (
            SELECT manifest, size, chunk_size, min(holder) AS holder, sum(live) AS holders,
              count(DISTINCT CASE WHEN live THEN network END) AS networks,
              min(CASE WHEN live THEN created_at END) AS oldest, max(lease) AS lease
            FROM holders GROUP BY manifest, size, chunk_size)
          SELECT ?1 AS sha256, v.holder, v.size, v.chunk_size, v.manifest
          FROM variants v LEFT JOIN rounds r
            ON r.manifest = v.manifest AND r.size = v.size AND r.chunk_size = v.chunk_size
          ORDER BY v.oldest = (SELECT min(oldest) FROM variants) DESC, r.round IS NULL, r.round,
            v.networks DESC, v.oldest, v.holders DESC, v.lease DESC, v.manifest, v.size, v.chunk_size
          LIMIT ?3`,
    args: [sha256, now, MAX_VARIANTS],
  })
  return result.rows.map(toContent)
}

export type LiveSource = { username: string; url: string; key: string | null; leaseExpiresAt: number }

/** A variant's live holders: how many, a random sample of them, and when the first of their leases ends. */
export type LiveHolders = { count: number; sample: LiveSource[]; liveUntil: number }

/**
 * Live holders of each content (variant) by `variantKey`: all of them counted, a random sample of at
 * most `perContent` with their leases. One row per variant (the sample as a JSON array): per-row driver
 * overhead dominated otherwise.
 */
export async function liveSources(
  db: Database,
  contents: Omit<Content, 'name'>[],
  now: number,
  perContent: number,
): Promise<Map<string, LiveHolders>> {
  const none = (): LiveHolders => ({ count: 0, sample: [], liveUntil: Number.POSITIVE_INFINITY })
  const holders = new Map<string, LiveHolders>(contents.map((content) => [variantKey(content), none()]))
  if (contents.length === 0) return holders
  // Only the variants asked for: a popular sha256 may come in many more (holders that disagree).
  const wanted = contents.map((content) => [
    content.sha256,
    content.manifest,
    content.size,
    content.chunkSize,
  ])
  // The variants by their place in `wanted`; the answer as one row (a JSON array): the driver's
  // cost per row was a good part of the statement's.
  const result = await db.execute({
    sql: `SELECT json_group_array(json_array(i, holders, live_until, json(sample))) AS variants FROM (
            SELECT i, count(*) AS holders, min(lease) AS live_until,
              json_group_array(json_array(username, url, lease, peer_key)) FILTER (WHERE n <= ?3) AS sample FROM (
              SELECT w.key AS i, p.username, p.url, p.lease_expires_at AS lease, p.peer_key,
                row_number() OVER (PARTITION BY w.key ORDER BY random()) AS n
              FROM json_each(?1) w
              JOIN files f ON f.sha256 = w.value ->> 0 AND f.manifest = w.value ->> 1
                AND f.size = w.value ->> 2 AND f.chunk_size = w.value ->> 3
              JOIN peers p ON p.id = f.peer_id AND f.generation = p.index_generation
                AND p.lease_expires_at > ?2)
            GROUP BY i)`,
    args: [JSON.stringify(wanted), now, perContent],
  })
  const variants = JSON.parse(String(result.rows[0]?.variants ?? '[]')) as [
    number,
    number,
    number,
    [string, string, number, string | null][],
  ][]
  for (const [i, count, liveUntil, sample] of variants) {
    const content = contents[i]
    if (!content) continue
    holders.set(variantKey(content), {
      count,
      sample: shuffle(
        sample.map(([username, url, leaseExpiresAt, key]) => ({ username, url, key, leaseExpiresAt })),
      ),
      liveUntil,
    })
  }
  return holders
}
