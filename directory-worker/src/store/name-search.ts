import type { InValue } from '@libsql/client'
import type { Database } from './database.ts'
import { type Content, HOLDER, nameKey, splitHolder, variantKey } from './files.ts'
import { ftsQuery, hasTrigram, LONGEST_PHRASE, prefixEnd, queryWords, wordsFtsQuery } from './name-match.ts'

/**
 * How many live matching rows the prefix and substring stages look at: a few per result still
 * wanted, so each stage is an index walk that stops soon after the limit, however common the word
 * (ranking every match cost time in proportion to the index). Holders of one content mostly share
 * its name, so they sit together in name order and are counted together. The exact stage stays complete.
 */
const CANDIDATES_PER_RESULT = 4
const MAX_CANDIDATES = 5000

/**
 * Results one holder (a result's lowest peer id among its live holders) may have on one page: one
 * account publishing thousands of matching names must not fill it (6,000 "concert …" names pushed
 * "live concert at wembley.mp3" off the first 50).
 */
export const MAX_PER_HOLDER = 3

/** How many names are read to estimate how common each trigram of a long key is. */
const SAMPLE_NAMES = 256

const live =
  'JOIN peers p ON p.id = f.peer_id AND f.generation = p.index_generation AND p.lease_expires_at > ?1'
// What a stage ranks by, all in the files_name index for the exact and prefix stages.
const withLease =
  'f.peer_id, f.sha256, f.name, f.path, f.size, f.chunk_size, f.manifest, p.lease_expires_at AS lease, p.created_at AS since'

/**
 * One row per variant (never a field merged across holders that disagree), most holders first, then
 * the one with the oldest account among them (a squatter's fresh account loses a tie); but each
 * holder's first MAX_PER_HOLDER before anyone's next ones. `lead` is the holder a result counts
 * against (its lowest peer id among its holders). Ranked within the stage's window only, which is
 * what the stage reads anyway.
 */
export const groupByContent = (candidates: string, limit: string) => `
  SELECT * FROM (
    SELECT g.*, row_number() OVER (PARTITION BY lead
        ORDER BY holders DESC, oldest, holder, sha256, manifest, size, chunk_size) AS nth
    FROM (
      SELECT h.sha256, min(${HOLDER('h')}) AS holder, h.size, h.chunk_size, h.manifest, count(*) AS holders,
        min(h.lease) AS lease_end, min(h.peer_id) AS lead, min(h.since) AS oldest
      FROM (${candidates}) h
      GROUP BY h.sha256, h.manifest, h.size, h.chunk_size) g)
  ORDER BY nth > ${MAX_PER_HOLDER}, holders DESC, oldest, holder, sha256, manifest, size, chunk_size
  LIMIT ${limit}`

/**
 * A stage's variants as one JSON array, in the order its ordered rows come: the driver's cost per
 * returned row was a good part of a statement that answers 50.
 */
export const asJson = (rows: string) =>
  `(SELECT json_group_array(json_array(sha256, holder, size, chunk_size, manifest, lease_end, lead)) FROM ${rows})`

/**
 * A stage's variant: sha256, the holder's name and path (HOLDER), size, chunk size, manifest, the first lease among its holders to
 * end, the holder it counts against.
 */
export type StageContent = [string, string, number, number, string, number, number]

/**
 * The exact and prefix stages in one statement (?1 now, ?2 key, ?3 its prefix's end, ?4 limit):
 * the prefix stage's window is what the exact one left of the limit. A long key also gets names
 * (consecutive rows from a random place, a few pages) to tell its rare trigrams by.
 */
const firstStages = (long: boolean) => `
  WITH exact AS (${groupByContent(`SELECT ${withLease} FROM files f ${live} WHERE f.name_key = ?2`, '?4')}),
  prefix AS (${groupByContent(
    `SELECT ${withLease} FROM files f ${live} WHERE f.name_key > ?2 AND f.name_key < ?3
     LIMIT min(${MAX_CANDIDATES}, (?4 - (SELECT count(*) FROM exact)) * ${CANDIDATES_PER_RESULT})`,
    '?4 + (SELECT count(*) FROM exact)',
  )})
  SELECT ${asJson('exact')} AS exact, ${asJson('prefix')} AS prefix, ${long ? SAMPLE : "'[]'"} AS sample`

/**
 * Names with their paths, consecutive rows from a random place (a few pages): what tells a query's
 * rare trigrams from its common ones.
 */
const PATH_MARK = '\u0001'
const SAMPLE = `(SELECT json_group_array(name_key || char(1) || path_key) FROM (SELECT name_key, path_key FROM files
  WHERE id >= (SELECT (random() & 4294967295) % max(1, max(id) - ${SAMPLE_NAMES}) FROM files)
  ORDER BY id LIMIT ${SAMPLE_NAMES}))`

/** Binds a statement's arguments in order, each named by its number (?1 is now). */
export class Args {
  readonly values: InValue[]
  constructor(now: number) {
    this.values = [now]
  }
  add(value: InValue): string {
    this.values.push(value)
    return `?${this.values.length}`
  }
}

/** One stage alone, looking at up to `window` candidates (a second look, further). */
function laterStage(now: number, stage: LaterStage, window: number, limit: number) {
  const args = new Args(now)
  const rows = stageRows(args, stage, args.add(window))
  return {
    sql: `SELECT ${asJson(`(${groupByContent(rows, args.add(limit))})`)} AS contents`,
    args: args.values,
  }
}

/**
 * The stages after the prefix one in one statement (each a round trip of its own cost as much as
 * its walk when it finds little): each one's window is what the ones before it left of `remaining`,
 * so a stage the ones before filled reads nothing. Answers one JSON array of variants per stage.
 */
function laterStagesAtOnce(now: number, stages: LaterStage[], remaining: number, limit: number) {
  const args = new Args(now)
  const left = args.add(remaining)
  const most = args.add(limit)
  const ctes = stages.map((stage, i) => {
    const before = stages.map((_, j) => `(SELECT count(*) FROM s${j})`).slice(0, i)
    const window = `min(${MAX_CANDIDATES}, max(0, ${[left, ...before].join(' - ')}) * ${CANDIDATES_PER_RESULT})`
    return `s${i} AS (${groupByContent(stageRows(args, stage, window), most)})`
  })
  return {
    sql: `WITH ${ctes.join(',\n')} SELECT ${stages.map((_, i) => `${asJson(`s${i}`)} AS c${i}`).join(', ')}`,
    args: args.values,
  }
}

/** A stage's candidate rows, at most `window` (SQL) of them. */
function stageRows(args: Args, stage: LaterStage, window: string) {
  const { match, index, conditions } = stage
  const from =
    match === undefined
      ? `files f ${live} WHERE`
      : `${index} JOIN files f ON f.id = ${index}.rowid ${live} WHERE ${index} MATCH ${args.add(match)} AND`
  return `SELECT ${withLease} FROM ${from} ${conditions(args).join(' AND ')} LIMIT ${window}`
}

/** A stage's trigram index: files_fts over names, files_words_fts over names and paths (migration 10). */
type LaterStage = {
  match: string | undefined
  index: 'files_fts' | 'files_words_fts'
  conditions: (args: Args) => string[]
}

/**
 * The words' MATCH: with a sample to tell their rare parts by, a few of their trigrams
 * (wordsFtsQuery); without one, every word as a phrase. The stage checks each word on each
 * candidate either way.
 */
function wordsMatch(words: string[], sample: readonly string[]): string | undefined {
  const indexed = words.filter(hasTrigram)
  if (indexed.length === 0) return undefined
  if (sample.length > 0) return wordsFtsQuery(indexed, sample)
  return indexed.map((word) => `(${ftsQuery(word, sample)})`).join(' AND ')
}

/**
 * The stages after exact and prefix, best first (README, the directory's search): the whole query in the name (not at
 * its start: that was the prefix stage), then every word in the name, then every word in the path
 * or the name. Each takes only rows the ones before it do not, so its window is all new matches.
 */
function laterStages(key: string, words: string[], sample: readonly string[]): LaterStage[] {
  // The sample is names with their paths (SAMPLE): the name stages count in the names only.
  const names = sample.map((text) => text.split(PATH_MARK)[0] ?? '')
  const stages: LaterStage[] = [
    {
      match: hasTrigram(key) ? ftsQuery(key, names) : undefined,
      index: 'files_fts',
      conditions: (args) => [`instr(f.name_key, ${args.add(key)}) > 1`],
    },
  ]
  if (words.length === 0) return stages
  const inName = (bound: string[]) => bound.map((word) => `instr(f.name_key, ${word}) > 0`)
  if (words.length > 1 || words[0] !== key) {
    stages.push({
      match: wordsMatch(words, names),
      index: 'files_fts',
      conditions: (args) => [
        ...inName(words.map((word) => args.add(word))),
        `instr(f.name_key, ${args.add(key)}) = 0`,
      ],
    })
  }
  stages.push({
    match: wordsMatch(words, sample),
    index: 'files_words_fts',
    conditions: (args) => {
      const bound = words.map((word) => args.add(word))
      return [
        ...bound.map((word) => `(instr(f.name_key, ${word}) > 0 OR instr(f.path_key, ${word}) > 0)`),
        `NOT (${inName(bound).join(' AND ')})`,
      ]
    },
  })
  return stages
}

/**
 * A page of results filled stage by stage, best first: each variant once, each holder's first
 * MAX_PER_HOLDER before anyone's next ones (those come last, where nobody else's fill the page).
 */
export class Page {
  readonly contents: Content[] = []
  readonly #limit: number
  readonly #seen = new Set<string>()
  readonly #perHolder = new Map<number, number>()
  readonly #overflow: { content: Content; leaseEnd: number }[] = []
  #liveUntil = Number.POSITIVE_INFINITY

  constructor(limit: number) {
    this.#limit = limit
  }

  get full() {
    return this.contents.length >= this.#limit
  }
  get seen() {
    return this.#seen.size
  }
  get overflowing() {
    return this.#overflow.length
  }

  /** A stage's variants (a JSON array of StageContent), in its order. */
  take(json: unknown) {
    this.takeRows(JSON.parse(String(json ?? '[]')) as StageContent[])
  }

  takeRows(rows: StageContent[]) {
    for (const [sha256, holder, size, chunkSize, manifest, leaseEnd, lead] of rows) {
      const content = { ...splitHolder(holder), size, sha256, chunkSize, manifest }
      if (this.#seen.has(variantKey(content)) || this.full) continue
      this.#seen.add(variantKey(content))
      const held = this.#perHolder.get(lead) ?? 0
      this.#perHolder.set(lead, held + 1)
      if (held >= MAX_PER_HOLDER) this.#overflow.push({ content, leaseEnd })
      else this.#keep(content, leaseEnd)
    }
  }

  #keep(content: Content, leaseEnd: number) {
    this.contents.push(content)
    this.#liveUntil = Math.min(this.#liveUntil, leaseEnd)
  }

  finish(): { contents: Content[]; liveUntil: number } {
    for (const { content, leaseEnd } of this.#overflow.slice(0, this.#limit - this.contents.length)) {
      this.#keep(content, leaseEnd)
    }
    return { contents: this.contents, liveUntil: this.#liveUntil }
  }
}

/**
 * Contents matching `text`, offered by at least one live peer, best first: exact name, then name
 * prefix, then the whole text in the name, then every word of it in the name, then every word in
 * the path or the name; within a rank, contents with more live holders first. Each variant is a
 * content of its own (the same sha256 may come twice, with different manifests), answered with the
 * name and path of a holder that matched it at its rank. Each rank is one indexed walk (name_key
 * index for exact and prefix, the trigram index over names and paths for the others).
 * `liveUntil` is when the first lease of a holder counted for these contents ends (the ranking
 * may change then).
 */
export async function searchByName(
  db: Database,
  text: string,
  now: number,
  limit: number,
): Promise<{ contents: Content[]; liveUntil: number }> {
  const key = nameKey(text)
  const chars = [...key].length
  const page = new Page(limit)
  const words = queryWords(key)
  const long = chars > LONGEST_PHRASE || words.some((word) => [...word].length > LONGEST_PHRASE)
  const first = await db.execute({ sql: firstStages(long), args: [now, key, prefixEnd(key), limit] })
  const row = first.rows[0]
  page.take(row?.exact)
  page.take(row?.prefix)
  let sample = JSON.parse(String(row?.sample ?? '[]')) as string[]
  // Several words are asked for by their rarest trigrams, told by a sample (read now if not yet).
  if (!page.full && words.length > 1 && sample.length === 0) {
    const read = await db.execute(`SELECT ${SAMPLE} AS sample`)
    sample = JSON.parse(String(read.rows[0]?.sample ?? '[]')) as string[]
  }
  const stages = laterStages(key, words, sample)
  const remaining = limit - page.contents.length
  const later =
    remaining > 0 ? await db.execute(laterStagesAtOnce(now, stages, remaining, limit + page.seen)) : undefined
  for (const [i, stage] of stages.entries()) {
    if (page.full) break
    const window = Math.min(MAX_CANDIDATES, (limit - page.contents.length) * CANDIDATES_PER_RESULT)
    const before = page.overflowing
    page.take(later?.rows[0]?.[`c${i}`])
    // One holder's matches filled the window: look once as far as any stage does, for others'.
    // Matches by folder come a folder at a time (a dozen files of one holder): that stage looks
    // four times as far, not 5,000 rows (30-180 ms at a million files for a common folder word).
    const further = stage.index === 'files_words_fts' ? Math.min(MAX_CANDIDATES, window * 4) : MAX_CANDIDATES
    if (page.overflowing > before && !page.full && window < further) {
      const again = await db.execute(laterStage(now, stage, further, limit + page.seen))
      page.take(again.rows[0]?.contents)
    }
  }
  return page.finish()
}
