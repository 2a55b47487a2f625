import { randomBytes } from 'node:crypto'
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** What happens to a match of a wish with `--get`; `had` when this peer already shared its bytes. */
export type FetchState = 'pending' | 'fetching' | 'fetched' | 'failed' | 'had'

export type WishMatch = {
  name: string
  path: string
  sha256: string
  size: number
  foundAt: string
  /** Absent for a wish without `--get`. */
  fetch?: FetchState
  attempts?: number
  /** When a failed fetch is tried again (epoch ms). */
  retryAt?: number
  error?: string
}

export type Wish = {
  id: string
  query: string
  get: boolean
  minSize?: number
  maxSize?: number
  createdAt: string
  /** The directory's publishing position after the last run: the next run asks only what came since. */
  cursor?: string
  lastRunAt?: string
  lastError?: string
  /** The most recent matches (at most MAX_MATCHES), newest last. */
  matches: WishMatch[]
}

/** The file's format; a newer daemon reads older versions, an older one leaves a newer file alone. */
export const WISHES_VERSION = 1
export const MAX_WISHES = 1000
export const MAX_QUERY_LENGTH = 256
const MAX_MATCHES = 100

type WishesFile = { version: number; wishes: Wish[] }

/**
 * The wishes in `<state>/wishes.json`, kept across restarts: every change is written whole to a
 * temporary file and renamed over the old one, so a crash leaves either the old list or the new.
 */
export class WishStore {
  readonly #path: string
  readonly #wishes: Wish[]
  /** Set when the file is of a newer format than this daemon knows: it is not overwritten. */
  readonly unreadable: string | undefined

  constructor(stateDir: string) {
    this.#path = join(stateDir, 'wishes.json')
    const loaded = load(this.#path)
    this.#wishes = loaded.wishes
    this.unreadable = loaded.unreadable
  }

  get all(): readonly Wish[] {
    return this.#wishes
  }

  get(id: string): Wish | undefined {
    return this.#wishes.find((w) => w.id === id)
  }

  add(wish: Omit<Wish, 'id' | 'createdAt' | 'matches'>): Wish {
    this.#writable()
    if (this.#wishes.length >= MAX_WISHES) throw new WishError(`at most ${MAX_WISHES} wishes are kept`)
    const added: Wish = {
      ...wish,
      id: randomBytes(4).toString('hex'),
      createdAt: new Date().toISOString(),
      matches: [],
    }
    this.#wishes.push(added)
    this.save()
    return added
  }

  remove(id: string): boolean {
    this.#writable()
    const at = this.#wishes.findIndex((w) => w.id === id)
    if (at < 0) return false
    this.#wishes.splice(at, 1)
    this.save()
    return true
  }

  /** Notes a new match, keeping only the most recent ones. */
  addMatch(wish: Wish, match: WishMatch) {
    wish.matches.push(match)
    if (wish.matches.length > MAX_MATCHES) wish.matches.splice(0, wish.matches.length - MAX_MATCHES)
  }

  /** Writes the wishes as they are now (after a run changed them in place). */
  save() {
    if (this.unreadable) return
    const temp = `${this.#path}.${randomBytes(4).toString('hex')}.tmp`
    const file: WishesFile = { version: WISHES_VERSION, wishes: this.#wishes }
    try {
      writeFileSync(temp, `${JSON.stringify(file, null, 1)}\n`, { mode: 0o600, flush: true })
      renameSync(temp, this.#path)
    } catch (err) {
      rmSync(temp, { force: true })
      throw err
    }
  }

  #writable() {
    if (this.unreadable) throw new WishError(this.unreadable)
  }
}

/** A wish the user asked for cannot be made or found (the CLI's usage errors). */
export class WishError extends Error {}

function load(path: string): { wishes: Wish[]; unreadable?: string } {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    return { wishes: [] }
  }
  let parsed: Partial<WishesFile>
  try {
    parsed = JSON.parse(text)
  } catch {
    return { wishes: [], unreadable: `${path} is not valid JSON; fix or remove it to keep wishes` }
  }
  if (typeof parsed.version !== 'number' || parsed.version > WISHES_VERSION) {
    return {
      wishes: [],
      unreadable: `${path} is of a newer format (version ${parsed.version}) than this peer knows; upgrade peerdir`,
    }
  }
  // A fetch the last daemon was running when it stopped waits to be started again.
  const resumed = (m: WishMatch): WishMatch => (m.fetch === 'fetching' ? { ...m, fetch: 'pending' } : m)
  const wishes = Array.isArray(parsed.wishes) ? parsed.wishes.filter(isWish) : []
  return { wishes: wishes.map((w) => ({ ...w, matches: (w.matches ?? []).map(resumed) })) }
}

const isWish = (w: unknown): w is Wish =>
  typeof w === 'object' &&
  w !== null &&
  typeof (w as Wish).id === 'string' &&
  typeof (w as Wish).query === 'string' &&
  typeof (w as Wish).get === 'boolean'
