import type { Result } from '../../../contract/schemas.ts'
import type { Database } from '../store/database.ts'
import {
  type Content,
  type LiveHolders,
  liveSources,
  nameKey,
  variantKey,
  variantsByHash,
} from '../store/files.ts'
import { queryWords } from '../store/name-match.ts'
import { searchByName } from '../store/name-search.ts'
import { searchGeneration } from '../store/search-generation.ts'
import {
  liveRows,
  type PublishedSpan,
  publishedVariants,
  rankPublished,
  searchByNameSince,
} from '../store/search-since.ts'
import { nextTurn } from '../util/next-turn.ts'
import { shuffle } from '../util/shuffle.ts'
import { RecentPublications } from './recent-publications.ts'
import { encodeCursor } from './search-cursor.ts'

/** Enough sources to saturate any downloader; popular contents would otherwise return thousands. */
export const SOURCES_PER_RESULT = 64
/** Sources per result of a name search unless the caller asks for another number (at most 64). */
export const NAME_SEARCH_SOURCES = 8

/** A cached answer is reused this long at most, so the sample of a popular content's sources rotates. */
const REUSE_MS = 2000
/** Bounds the memory of cached answers, counted in contents plus sources. */
const MAX_WEIGHT = 200_000

type Answer = { content: Content; holders: LiveHolders }[]
type Entry = { generation: number; published: number; validUntil: number; answer: Answer; weight: number }
type Read = { generation: number; published: number }

/**
 * Searches by name or hash, each answer reused while nothing it depends on changed; or, `since` a
 * publish number (a cursor), only what was published after it, read afresh each time (one small
 * read when nothing was). A popular query
 * under load costs one small read (the search generation) instead of ranking thousands of matches.
 * A cached answer is served only while the database's search generation is the one it was computed
 * at (every process and isolate reads it, so a logout or index write anywhere counts), and only
 * until the first lease among its holders ends (a heartbeat may have renewed it; the answer is
 * computed again then). Sources are shuffled afresh on every answer.
 */
export class SearchResults {
  readonly #db: Database
  readonly #recent: RecentPublications
  readonly #entries = new Map<string, Entry>()
  readonly #pending = new Map<string, Promise<Entry>>()
  #weight = 0
  #nextGeneration: Promise<Read> | undefined

  constructor(db: Database) {
    this.#db = db
    this.#recent = new RecentPublications(db)
  }

  /**
   * The search generation, read once for all the searches that arrive before the read starts: the
   * read is scheduled for the next turn of the event loop and later arrivals wait for the one after,
   * so each answer still reflects every write committed before its request came in.
   */
  #generation(): Promise<Read> {
    this.#nextGeneration ??= new Promise((resolve, reject) =>
      nextTurn(() => {
        this.#nextGeneration = undefined
        searchGeneration(this.#db).then(resolve, reject)
      }),
    )
    return this.#nextGeneration
  }

  /**
   * `sources`: how many of each result's live holders to answer (all are counted); `since`: a
   * cursor's publish number.
   */
  async byName(
    text: string,
    now: number,
    limit: number,
    sources = NAME_SEARCH_SOURCES,
    since?: number,
  ): Promise<Found> {
    const db = this.#db
    if (since !== undefined) {
      return this.#since(since, async (span) => {
        // Every result holds its longest word in its name or path (or, with no words, the text).
        const key = nameKey(text)
        const longest = queryWords(key).reduce((a, b) => (b.length > a.length ? b : a), '')
        const rows = await this.#recent.rows(span.after, span.upTo, longest || key)
        const contents = rows
          ? rankPublished(await liveRows(db, rows, now), text, limit)
          : await searchByNameSince(db, text, now, limit, span)
        return withSources(db, contents, now, sources)
      })
    }
    return this.#answer(`name:${limit}:${sources}:${nameKey(text)}`, now, async () => {
      const { contents, liveUntil } = await searchByName(db, text, now, limit)
      return { answer: await withSources(db, contents, now, sources), liveUntil }
    })
  }

  async byHash(sha256: string, now: number, since?: number): Promise<Found> {
    const db = this.#db
    if (since !== undefined) {
      return this.#since(since, async (span) => {
        const fresh = await publishedVariants(db, sha256, now, span)
        if (fresh.size === 0) return []
        const contents = await variantsByHash(db, sha256, now)
        return withSources(
          db,
          contents.filter((content) => fresh.has(variantKey(content))),
          now,
          SOURCES_PER_RESULT,
        )
      })
    }
    return this.#answer(`sha256:${sha256}`, now, async () => {
      const answer = await withSources(db, await variantsByHash(db, sha256, now), now, SOURCES_PER_RESULT)
      return { answer, liveUntil: Number.POSITIVE_INFINITY }
    })
  }

  /**
   * What was published after `since` up to the publish number read now (the answer's cursor, read
   * before the results: a write committed after it has a greater one, so the next `since` answers
   * it, and nothing is answered twice). A cursor ahead of the directory's (its database was
   * replaced) answers nothing, with the directory's.
   */
  async #since(since: number, compute: (span: PublishedSpan) => Promise<Answer>): Promise<Found> {
    const { published } = await this.#generation()
    if (since >= published) return new Found([], published)
    return new Found(await compute({ after: since, upTo: published }), published)
  }

  async #answer(
    key: string,
    now: number,
    compute: () => Promise<{ answer: Answer; liveUntil: number }>,
  ): Promise<Found> {
    const { generation, published } = await this.#generation()
    let entry = this.#entries.get(key)
    if (!entry || entry.generation !== generation || now >= entry.validUntil) {
      const pendingKey = `${generation}:${key}`
      let pending = this.#pending.get(pendingKey)
      if (!pending) {
        pending = compute()
          .then(({ answer, liveUntil }) =>
            this.#store(key, { generation, published }, now, answer, liveUntil),
          )
          .finally(() => this.#pending.delete(pendingKey))
        this.#pending.set(pendingKey, pending)
      }
      entry = await pending
    }
    // The cursor read with the generation the answer was computed at (the same while it is the same).
    return new Found(entry.answer, entry.published)
  }

  #store(key: string, read: Read, now: number, answer: Answer, liveUntil: number): Entry {
    let validUntil = Math.min(now + REUSE_MS, liveUntil)
    let weight = 1
    for (const { holders } of answer) {
      weight += 1 + holders.sample.length
      // Every holder counted, not only the sample: sourceCount drops when any of their leases ends.
      validUntil = Math.min(validUntil, holders.liveUntil)
    }
    const entry = { ...read, validUntil, answer, weight }
    this.#forget(key)
    if (weight > MAX_WEIGHT) return entry
    // Map iteration is insertion order, and a hit does not reorder: the oldest answers go first.
    for (const [oldest] of this.#entries) {
      if (this.#weight + weight <= MAX_WEIGHT) break
      this.#forget(oldest)
    }
    this.#entries.set(key, entry)
    this.#weight += weight
    return entry
  }

  #forget(key: string) {
    const entry = this.#entries.get(key)
    if (!entry) return
    this.#entries.delete(key)
    this.#weight -= entry.weight
  }
}

const encoder = new TextEncoder()
const bytes = (text: string) => encoder.encode(text)

type Bytes = Uint8Array<ArrayBuffer>
/**
 * An answer's JSON encoded once: runs of results with one source are fixed text; a result with
 * several keeps its head and sources apart, to be put together in a fresh order every time.
 */
type Segment = string | { head: string; sources: string[] }

async function withSources(
  db: Database,
  contents: Content[],
  now: number,
  perContent: number,
): Promise<Answer> {
  const holders = await liveSources(db, contents, now, perContent)
  const none = { count: 0, sample: [], liveUntil: Number.POSITIVE_INFINITY }
  return contents.map((content) => ({ content, holders: holders.get(variantKey(content)) ?? none }))
}

type Encoded = {
  segments: Segment[]
  /** Whole bodies by query text, for answers with nothing to shuffle: one buffer serves them all. */
  bodies?: Map<string, Bytes>
}

/** Query spellings whose whole body an answer keeps (they differ in case only). */
const BODIES_PER_ANSWER = 8

const encodedAnswers = new WeakMap<Answer, Encoded>()

function encoded(answer: Answer): Encoded {
  let known = encodedAnswers.get(answer)
  if (known) return known
  const segments: Segment[] = []
  let run = ''
  let written = 0
  for (const { content, holders } of answer) {
    if (holders.count === 0) continue
    const head = `${written++ > 0 ? ',' : ''}${JSON.stringify(content).slice(0, -1)},"sourceCount":${holders.count},"sources":[`
    const texts = holders.sample.map(({ username, url, key }) => JSON.stringify({ username, url, key }))
    if (texts.length === 1) {
      run += `${head}${texts[0]}]}`
      continue
    }
    if (run) segments.push(run)
    run = ''
    segments.push({ head, sources: texts })
  }
  if (run) segments.push(run)
  const fixed = segments.every((segment) => typeof segment === 'string')
  known = fixed ? { segments, bodies: new Map() } : { segments }
  encodedAnswers.set(answer, known)
  return known
}

/**
 * One answer, sources freshly shuffled each time it is read. Its sources are all live: an answer is
 * served only before the first lease among its holders ends.
 */
export class Found {
  readonly #answer: Answer
  readonly cursor: string

  /** `published`: the publish number the answer was read at (its cursor). */
  constructor(answer: Answer, published: number) {
    this.#answer = answer
    this.cursor = encodeCursor(published)
  }

  /** As objects (the dashboard's first paint). */
  results(): Result[] {
    return this.#answer
      .filter(({ holders }) => holders.count > 0)
      .map(({ content, holders }) => ({
        ...content,
        sourceCount: holders.count,
        sources: shuffle(holders.sample.map(({ username, url, key }) => ({ username, url, key }))),
      }))
  }

  /**
   * `{query, results, cursor}` as JSON bytes, the same text JSON.stringify gives, put together from
   * pieces encoded once: stringifying and encoding the whole answer was most of a cached search.
   */
  json(query: string): string | Bytes {
    const { segments, bodies } = encoded(this.#answer)
    const tail = `],"cursor":"${this.cursor}"}`
    const known = bodies?.get(`${this.cursor}:${query}`)
    if (known) return known
    // A string, not bytes: V8 joins the pieces without copying and the socket write encodes it
    // once; a fresh 50 KB buffer per answer cost more (allocation, copies, GC).
    let body = `{"query":${JSON.stringify(query)},"results":[`
    for (const segment of segments) {
      body += typeof segment === 'string' ? segment : `${segment.head}${shuffle(segment.sources).join(',')}]}`
    }
    body += tail
    if (!bodies) return body
    const encodedBody = bytes(body)
    if (bodies.size < BODIES_PER_ANSWER) bodies.set(`${this.cursor}:${query}`, encodedBody)
    return encodedBody
  }
}
