import type { Database } from './database.ts'
import { type Content, nameKey, variantKey } from './files.ts'
import { prefixEnd, queryWords } from './name-match.ts'
import { Args, asJson, groupByContent, MAX_PER_HOLDER, Page, type StageContent } from './name-search.ts'
import { PUBLISHED } from './publish-sequence.ts'
import type { Published } from './recent-publications.ts'

/** A search's span of publish numbers: after `after`, up to and with `upTo` (the answer's cursor). */
export type PublishedSpan = { after: number; upTo: number }

/**
 * The live rows published in the span (see publish-sequence.ts), found from the publishing side
 * (files_published, peers_index_published): a saved search re-run a minute later reads a minute of
 * publishing, however big the index. ?1 is now, ?2 and ?3 the span.
 */
const FRESH = `
  SELECT f.peer_id, f.sha256, f.name, f.name_key, f.path, f.path_key, f.size, f.chunk_size, f.manifest,
    p.lease_expires_at AS lease, p.created_at AS since
  FROM files f JOIN peers p ON p.id = f.peer_id AND f.generation = p.index_generation AND p.lease_expires_at > ?1
  WHERE f.published > ?2 AND f.published <= ?3
  UNION ALL
  SELECT f.peer_id, f.sha256, f.name, f.name_key, f.path, f.path_key, f.size, f.chunk_size, f.manifest,
    p.lease_expires_at AS lease, p.created_at AS since
  FROM peers p JOIN files f ON f.peer_id = p.id AND f.generation = p.index_generation
  WHERE p.index_published > ?2 AND p.index_published <= ?3 AND p.lease_expires_at > ?1 AND f.published IS NULL`

/** The stages of a name search (name-search.ts), in its order. */
const STAGES = 5

/**
 * What `searchByName` answers for `text`, of only the rows published in the span, ranked by the
 * same stages (exact name, prefix, the text in the name, every word in the name, every word in the
 * path or name), within a stage by holders published in the span. One statement: the rows the span
 * holds are matched and ranked whole.
 */
export async function searchByNameSince(
  db: Database,
  text: string,
  now: number,
  limit: number,
  span: PublishedSpan,
): Promise<Content[]> {
  const key = nameKey(text)
  const words = queryWords(key)
  const args = new Args(now)
  args.add(span.after)
  args.add(span.upTo)
  const k = args.add(key)
  const end = args.add(prefixEnd(key))
  const bound = words.map((word) => args.add(word))
  const inName = bound.map((word) => `instr(f.name_key, ${word}) > 0`)
  const matches =
    bound.length === 0
      ? `instr(f.name_key, ${k}) > 0`
      : bound
          .map((word) => `(instr(f.name_key, ${word}) > 0 OR instr(f.path_key, ${word}) > 0)`)
          .join(' AND ')
  const stage = `CASE WHEN f.name_key = ${k} THEN 0 WHEN f.name_key > ${k} AND f.name_key < ${end} THEN 1
    WHEN instr(f.name_key, ${k}) > 1 THEN 2 WHEN ${inName.length > 0 ? inName.join(' AND ') : 'false'} THEN 3
    ELSE 4 END`
  const perStage = args.add(limit * STAGES)
  const columns = Array.from(
    { length: STAGES },
    (_, n) =>
      `${asJson(`(${groupByContent(`SELECT * FROM matched WHERE stage = ${n}`, perStage)})`)} AS s${n}`,
  )
  const result = await db.execute({
    sql: `WITH fresh AS (${FRESH}),
      matched AS (SELECT f.*, ${stage} AS stage FROM fresh f WHERE ${matches})
      SELECT ${columns.join(', ')}`,
    args: args.values,
  })
  const page = new Page(limit)
  for (let n = 0; n < STAGES; n++) page.take(result.rows[0]?.[`s${n}`])
  return page.finish().contents
}

/** Of a content's variants, those a holder published in the span (a new holder of old content counts). */
export async function publishedVariants(
  db: Database,
  sha256: string,
  now: number,
  span: PublishedSpan,
): Promise<Set<string>> {
  const result = await db.execute({
    sql: `SELECT DISTINCT f.manifest, f.size, f.chunk_size FROM files f
          JOIN peers p ON p.id = f.peer_id AND f.generation = p.index_generation AND p.lease_expires_at > ?2
          WHERE f.sha256 = ?1 AND ${PUBLISHED('f', 'p')} > ?3 AND ${PUBLISHED('f', 'p')} <= ?4`,
    args: [sha256, now, span.after, span.upTo],
  })
  return new Set(
    result.rows.map((row) =>
      variantKey({
        sha256,
        manifest: String(row.manifest),
        size: Number(row.size),
        chunkSize: Number(row.chunk_size),
      }),
    ),
  )
}

type Group = {
  sha256: string
  holder: string
  size: number
  chunkSize: number
  manifest: string
  holders: number
  lead: number
  oldest: number
}

const byRank = (a: Group, b: Group) =>
  b.holders - a.holders ||
  a.oldest - b.oldest ||
  compare(a.holder, b.holder) ||
  compare(a.sha256, b.sha256) ||
  compare(a.manifest, b.manifest) ||
  a.size - b.size ||
  a.chunkSize - b.chunkSize
const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

/**
 * `searchByNameSince` over rows already read (RecentPublications), in memory: the same stages, the
 * same order within each (groupByContent's), the same page (Page). What costs a saved search's
 * re-run is then a pass over a minute of publishing, not a statement.
 */
export function rankPublished(rows: readonly Published[], text: string, limit: number): Content[] {
  const key = nameKey(text)
  const words = queryWords(key)
  const stages = Array.from({ length: STAGES }, () => new Map<string, Group>())
  for (const row of rows) {
    const name = row.nameKey
    const matches =
      words.length === 0
        ? name.includes(key)
        : words.every((word) => name.includes(word) || row.pathKey.includes(word))
    if (!matches) continue
    const at = name.indexOf(key)
    const stage =
      name === key
        ? 0
        : at === 0
          ? 1
          : at > 0
            ? 2
            : words.length > 0 && words.every((word) => name.includes(word))
              ? 3
              : 4
    const holder = `${row.name}\u0001${row.path}`
    const groups = stages[stage] as Map<string, Group>
    const variant = variantKey(row)
    const group = groups.get(variant)
    if (!group) {
      groups.set(variant, { ...row, holder, holders: 1, lead: row.peerId, oldest: row.since })
      continue
    }
    group.holders++
    group.lead = Math.min(group.lead, row.peerId)
    group.oldest = Math.min(group.oldest, row.since)
    if (holder < group.holder) group.holder = holder
  }
  const page = new Page(limit)
  for (const groups of stages) {
    const ranked = [...groups.values()].sort(byRank)
    const nth = new Map<number, number>()
    const placed = ranked.map((group) => {
      const n = (nth.get(group.lead) ?? 0) + 1
      nth.set(group.lead, n)
      return { group, over: n > MAX_PER_HOLDER }
    })
    placed.sort((a, b) => Number(a.over) - Number(b.over) || byRank(a.group, b.group))
    page.takeRows(
      placed.map(
        ({ group: g }): StageContent => [g.sha256, g.holder, g.size, g.chunkSize, g.manifest, 0, g.lead],
      ),
    )
  }
  return page.finish().contents
}

/**
 * The rows whose peer is up at `now`: the rows kept in memory were read live or not, and a page
 * ranked over a down holder's rows could come back short while the cursor moves past live matches.
 */
export async function liveRows(db: Database, rows: readonly Published[], now: number): Promise<Published[]> {
  const peers = [...new Set(rows.map((row) => row.peerId))]
  if (peers.length === 0) return []
  const live = await db.execute({
    sql: 'SELECT id FROM peers WHERE id IN (SELECT value FROM json_each(?1)) AND lease_expires_at > ?2',
    args: [JSON.stringify(peers), now],
  })
  const up = new Set(live.rows.map((row) => Number(row.id)))
  return rows.filter((row) => up.has(row.peerId))
}
