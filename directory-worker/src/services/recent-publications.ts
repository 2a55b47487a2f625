import type { Database } from '../store/database.ts'
import { type Published, publishedBetween } from '../store/recent-publications.ts'

/**
 * The most rows kept (each about 300 bytes, and 100 or so trigrams of its name and path indexed); a
 * span reaching further back is searched in SQL.
 */
export const MAX_RECENT_ROWS = 20_000

const trigramsOf = (text: string) => {
  const found = new Set<string>()
  for (let i = 0; i + 3 <= text.length; i++) found.add(text.slice(i, i + 3))
  return found
}

/**
 * What was published lately, in memory: every saved search re-run with a cursor a minute old reads
 * the same minute of publishing, so it is read from the database once, as the publish number moves
 * on, and each re-run matches it in memory (store/search-since.ts). Holds one unbroken span of
 * publish numbers (low, high]: extended forward to the number a search read, or back to a search's
 * older cursor, then trimmed from its oldest end to MAX_RECENT_ROWS whole publish numbers.
 */
export class RecentPublications {
  readonly #db: Database
  #low = 0
  #high = -1
  #rows: Published[] = []
  /** Kept rows by the trigrams of their name and path keys (in publish order), made when first asked. */
  #trigrams: Map<string, Published[]> | undefined
  #loading: Promise<unknown> = Promise.resolve()

  constructor(db: Database) {
    this.#db = db
  }

  /**
   * The rows published in (after, upTo] whose name or path key may hold `text` (all of those that
   * do, maybe others), or undefined if there are more than can be kept.
   */
  rows(after: number, upTo: number, text: string): Promise<Published[] | undefined> {
    // One load at a time: concurrent searches wait for the one that reads what they need.
    const answer = this.#loading.then(() => this.#rowsNow(after, upTo))
    this.#loading = answer.catch(() => {})
    return answer.then((found) => {
      if (!found) return undefined
      if (found.kept) return this.#holding(found.rows, after, upTo, text)
      return found.rows.filter((row) => row.nameKey.includes(text) || row.pathKey.includes(text))
    })
  }

  /** Of the rows, those that may hold `text`: found by its rarest trigram when it has one. */
  #holding(rows: Published[], after: number, upTo: number, text: string): Published[] {
    if (text.length < 3 || rows.length < 64) return rows
    if (!this.#trigrams) {
      this.#trigrams = new Map()
      for (const row of this.#rows) this.#index(row)
    }
    let rarest: Published[] = []
    let fewest = Number.POSITIVE_INFINITY
    for (const trigram of trigramsOf(text)) {
      const holders = this.#trigrams.get(trigram) ?? []
      if (holders.length < fewest) {
        fewest = holders.length
        rarest = holders
      }
    }
    return rarest.filter(
      (row) =>
        row.published > after &&
        row.published <= upTo &&
        (row.nameKey.includes(text) || row.pathKey.includes(text)),
    )
  }

  #index(row: Published) {
    for (const trigram of trigramsOf(`${row.nameKey}\u0000${row.pathKey}`)) {
      const holders = this.#trigrams?.get(trigram)
      if (holders) holders.push(row)
      else this.#trigrams?.set(trigram, [row])
    }
  }

  /** The rows of the span; `kept` when they are the kept ones (then indexed). */
  /** At most one row more than can be kept, so no span, however old its cursor, is read whole. */
  #read(after: number, upTo: number) {
    return publishedBetween(this.#db, after, upTo, MAX_RECENT_ROWS + 1)
  }

  async #rowsNow(after: number, upTo: number): Promise<{ rows: Published[]; kept: boolean } | undefined> {
    if (this.#high < this.#low || after > this.#high || upTo < this.#low) {
      // Nothing kept, or a span apart from the one kept: start afresh from it.
      const rows = await this.#read(after, upTo)
      if (rows.length > MAX_RECENT_ROWS) return undefined
      this.#low = after
      this.#high = upTo
      this.#rows = rows
      this.#trigrams = undefined
    } else {
      if (upTo > this.#high) {
        const newer = await this.#read(this.#high, upTo)
        if (newer.length > MAX_RECENT_ROWS) {
          // More was published than can be kept: forget what was kept, and answer this one in SQL.
          this.#low = 0
          this.#high = -1
          this.#rows = []
          this.#trigrams = undefined
          return undefined
        }
        this.#rows = this.#rows.concat(newer)
        this.#high = upTo
        for (const row of newer) this.#index(row)
      }
      if (after < this.#low) {
        const older = await this.#read(after, this.#low)
        if (older.length + this.#rows.length > MAX_RECENT_ROWS) return this.#fromDatabase(after, upTo)
        this.#rows = older.concat(this.#rows)
        this.#low = after
        this.#trigrams = undefined
      }
      this.#trim()
      if (after < this.#low) return this.#fromDatabase(after, upTo)
    }
    return { rows: this.#between(after, upTo), kept: true }
  }

  async #fromDatabase(after: number, upTo: number) {
    const rows = await this.#read(after, upTo)
    return rows.length > MAX_RECENT_ROWS ? undefined : { rows, kept: false }
  }

  /** Drops the oldest publish numbers whole until at most MAX_RECENT_ROWS rows are kept. */
  #trim() {
    if (this.#rows.length <= MAX_RECENT_ROWS) return
    let cut = this.#rows.length - MAX_RECENT_ROWS
    const boundary = this.#rows[cut - 1]?.published ?? this.#low
    while (cut < this.#rows.length && this.#rows[cut]?.published === boundary) cut++
    this.#rows = this.#rows.slice(cut)
    this.#low = boundary
    this.#trigrams = undefined
  }

  /** The kept rows in (after, upTo]: rows are in publish order, so two binary searches. */
  #between(after: number, upTo: number): Published[] {
    const firstAbove = (n: number) => {
      let lo = 0
      let hi = this.#rows.length
      while (lo < hi) {
        const mid = (lo + hi) >>> 1
        if ((this.#rows[mid]?.published ?? 0) > n) hi = mid
        else lo = mid + 1
      }
      return lo
    }
    return this.#rows.slice(firstAbove(after), firstAbove(upTo))
  }
}
