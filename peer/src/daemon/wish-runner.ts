import type { ShareIndex } from '../content/share-index.ts'
import type { Transfer } from '../transfer/transfer.ts'
import { DirectoryError, type Result } from '../wire/directory-client.ts'
import { Alarm } from './alarm.ts'
import type { DaemonEvents } from './daemon-events.ts'
import type { Wanted } from './downloads.ts'
import { MAX_QUERY_LENGTH, type Wish, WishError, type WishMatch, type WishStore } from './wish-store.ts'

/** How often each wish is searched again (PEERDIR_WISH_INTERVAL_MS overrides it, for tests). */
export const WISH_INTERVAL_MS = 60_000
/** Results asked for per run: what was published in one interval rarely comes near it. */
const RESULTS_PER_RUN = 200
/** While the directory does not answer, runs back off up to this. */
const MAX_BACKOFF_MS = 10 * 60_000

export type WishRunnerOptions = {
  store: WishStore
  /** The directory's search, answering only what was published after `since` when given. */
  search: (query: string, limit: number, since?: string) => Promise<{ results: Result[]; cursor: string }>
  /** The content's variants by hash, or undefined when nobody lists it any more. */
  variants: (sha256: string) => Promise<Wanted | undefined>
  /** Fetches into the shared folder (joins a running transfer of the same content). */
  fetch: (wanted: Wanted) => Transfer
  index: ShareIndex
  events: DaemonEvents
  log: (line: string) => void
  intervalMs?: number
}

/** Spread runs out, so daemons started together do not search in step. */
const jittered = (ms: number) => ms * (0.8 + Math.random() * 0.4)

const message = (err: unknown) => (err instanceof Error ? err.message : String(err))

/**
 * Runs the saved searches (`peer wish`): each about every interval (jittered), asking only what was
 * published since its last cursor; backs off while the directory is down. A match is noted once per
 * content; with `--get` it is fetched once into the shared folder (never when this peer already shares
 * those bytes, never twice at once, a failure tried again later with backoff).
 */
export class WishRunner {
  readonly #options: WishRunnerOptions
  readonly #interval: number
  readonly #alarm = new Alarm()
  /** When each wish runs next (epoch ms); absent: at once. */
  readonly #due = new Map<string, number>()
  /** Contents being fetched for a wish now. */
  readonly #fetching = new Set<string>()
  #failures = 0
  #stopped = false
  #loop: Promise<void> | undefined

  constructor(options: WishRunnerOptions) {
    this.#options = options
    this.#interval = options.intervalMs ?? WISH_INTERVAL_MS
    if (options.store.unreadable) options.log(`wishes: ${options.store.unreadable}`)
  }

  get all(): readonly Wish[] {
    return this.#options.store.all
  }

  start() {
    this.#loop ??= this.#run()
  }

  async stop() {
    this.#stopped = true
    this.#alarm.wake()
    await this.#loop
  }

  /** Saves a wish and runs it once at once, so what is published from now on is what it matches. */
  async add(wish: { query: string; get: boolean; minSize?: number; maxSize?: number }): Promise<Wish> {
    const query = wish.query.trim()
    if (!query) throw new WishError('give some text to wish for')
    if (query.length > MAX_QUERY_LENGTH)
      throw new WishError(`a wish is at most ${MAX_QUERY_LENGTH} characters`)
    if (wish.minSize !== undefined && wish.maxSize !== undefined && wish.minSize > wish.maxSize)
      throw new WishError('--min-size is larger than --max-size')
    const added = this.#options.store.add({ ...wish, query })
    await this.#runOne(added).catch(() => {})
    this.#options.store.save()
    return added
  }

  remove(id: string): boolean {
    this.#due.delete(id)
    return this.#options.store.remove(id)
  }

  async #run() {
    while (!this.#stopped) {
      let wait = this.#interval
      try {
        await this.#runDue()
        this.#failures = 0
        const now = Date.now()
        for (const wish of this.#options.store.all) {
          wait = Math.min(wait, (this.#due.get(wish.id) ?? now) - now)
          for (const m of wish.matches)
            if (m.fetch === 'failed') wait = Math.min(wait, (m.retryAt ?? now) - now)
        }
      } catch (err) {
        // The directory is down (or refused): every wish waits longer, up to MAX_BACKOFF_MS.
        this.#failures++
        wait = Math.min(MAX_BACKOFF_MS, this.#interval * 2 ** Math.min(this.#failures, 10))
        this.#options.log(`wishes: ${message(err)} (searching again in ${(wait / 1000).toFixed(1)} s)`)
      }
      await this.#alarm.sleep(jittered(Math.max(wait, 50)))
    }
  }

  /** Runs every wish that is due and starts the fetches waiting; throws when the directory fails. */
  async #runDue() {
    const { store } = this.#options
    try {
      for (const wish of [...store.all]) {
        if (this.#stopped) return
        if ((this.#due.get(wish.id) ?? 0) <= Date.now()) await this.#runOne(wish)
      }
    } finally {
      store.save()
      for (const wish of store.all) if (wish.get) this.#fetchWaiting(wish)
    }
  }

  async #runOne(wish: Wish) {
    const { search, index, events, store } = this.#options
    this.#due.set(wish.id, Date.now() + jittered(this.#interval))
    let answer: { results: Result[]; cursor: string }
    try {
      answer = await search(wish.query, RESULTS_PER_RUN, wish.cursor)
    } catch (err) {
      wish.lastError = message(err)
      // Refused for this wish alone (a cursor the directory no longer takes): it starts over, the
      // others run; anything else (the directory down) holds every wish back.
      if (err instanceof DirectoryError && err.status === 400) {
        wish.cursor = undefined
        return
      }
      throw err
    }
    wish.lastRunAt = new Date().toISOString()
    wish.lastError = undefined
    const firstRun = wish.cursor === undefined
    wish.cursor = answer.cursor
    // The first run only marks where the directory stands: a wish is for what comes after it.
    if (firstRun) return
    for (const result of answer.results) {
      if (wish.minSize !== undefined && result.size < wish.minSize) continue
      if (wish.maxSize !== undefined && result.size > wish.maxSize) continue
      // A new holder of content already matched is not a new match.
      if (wish.matches.some((m) => m.sha256 === result.sha256)) continue
      const match: WishMatch = {
        name: result.name,
        path: result.path ?? '',
        sha256: result.sha256,
        size: result.size,
        foundAt: new Date().toISOString(),
        ...(wish.get && { fetch: index.get(result.sha256) ? 'had' : 'pending', attempts: 0 }),
      }
      store.addMatch(wish, match)
      events.emit({
        type: 'wish-matched',
        wishId: wish.id,
        query: wish.query,
        name: match.name,
        path: match.path,
        sha256: match.sha256,
        size: match.size,
      })
    }
  }

  /** Starts the fetches of `wish` that wait (new, or failed and due again), one per content at a time. */
  #fetchWaiting(wish: Wish) {
    const now = Date.now()
    for (const match of wish.matches) {
      const due = match.fetch === 'pending' || (match.fetch === 'failed' && (match.retryAt ?? 0) <= now)
      if (!due || this.#fetching.has(match.sha256) || this.#stopped) continue
      void this.#fetch(match)
    }
  }

  async #fetch(match: WishMatch) {
    const { index, store, log } = this.#options
    this.#fetching.add(match.sha256)
    match.fetch = 'fetching'
    try {
      if (index.get(match.sha256)) {
        match.fetch = 'had'
        return
      }
      const wanted = await this.#options.variants(match.sha256)
      if (!wanted) throw new Error(`nobody on the network has ${match.sha256} any more`)
      await this.#options.fetch(wanted).done
      match.fetch = 'fetched'
      match.error = undefined
    } catch (err) {
      // Cut short by shutdown: not a failure, started again by the next daemon.
      if (this.#stopped) {
        match.fetch = 'pending'
        return
      }
      match.fetch = 'failed'
      match.attempts = (match.attempts ?? 0) + 1
      const backoff = Math.min(60 * this.#interval, this.#interval * 2 ** (match.attempts - 1))
      match.retryAt = Date.now() + jittered(backoff)
      match.error = message(err)
      log(
        `wishes: fetching ${match.name} failed (${match.error}); trying again in ${(backoff / 1000).toFixed(0)} s`,
      )
      this.#alarm.wake()
    } finally {
      this.#fetching.delete(match.sha256)
      store.save()
    }
  }
}
