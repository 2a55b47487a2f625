import type { Source } from '../../../contract/api-types.ts'
import type { DownloadCall } from '../wire/download-client.ts'
import type { Route } from '../wire/peer-connection.ts'

export type { Source }

/**
 * `queued`: our place in the source's upload queue while it makes us wait (0: it serves us); `route`:
 * how its bytes reach us (peer-connection.ts; `link` in `peer get --json`), absent where none was made.
 */
export type SourceReport = {
  username: string
  url: string
  bytes: number
  dropped: string
  queued: number
  route?: Route
}

/** What the downloader needs of one source; `connect` makes it (so tests and relays can supply their own). */
export type SourceLink = {
  manifest: (
    sha256: string,
    signal: AbortSignal,
  ) => Promise<{ size: number; chunkSize: number; chunkHashes: Buffer[] }>
  /**
   * The bytes of [offset, offset + length) in order, as slices valid only until the next is asked for;
   * where it can, a slice per `segmentBytes` counted from `offset` (whole chunks, then used in place).
   * `onBytes` is told how many file bytes arrived, also between slices: a slow source is not a silent one.
   */
  download: (call: DownloadCall, signal: AbortSignal) => AsyncIterable<Uint8Array>
  /** How its bytes reach us now; left out by links that are always direct. */
  route?: () => Route
  /**
   * A call failed or stalled: if its bytes came over a link punched through NAT, drop that link and go
   * on through the relay (true); false when there was none, and the failure is the source's.
   */
  fallBack?: () => boolean
  close: () => void
}

export type Connect = (source: Source) => SourceLink

/** `retryAt`: when a source that queued us is asked again (performance.now() time; 0: not waiting). */
export type PooledSource = Source & {
  link: SourceLink
  bytes: number
  dropped: string
  queued: number
  retryAt: number
}

/**
 * The sources of one download: live ones to ask, dropped ones remembered with why (never asked again,
 * and reported). Each source's link is made once and closed with the pool.
 */
export class SourcePool {
  readonly #connect: Connect
  readonly #live = new Map<string, PooledSource>()
  readonly #dropped = new Map<string, PooledSource>()

  constructor(connect: Connect) {
    this.#connect = connect
  }

  get size(): number {
    return this.#live.size
  }

  live(): PooledSource[] {
    return [...this.#live.values()]
  }

  get(url: string): PooledSource | undefined {
    return this.#live.get(url) ?? this.#dropped.get(url)
  }

  /** Adds the sources not seen before; returns the new ones. */
  add(sources: Source[]): PooledSource[] {
    const added: PooledSource[] = []
    for (const { username, url, key } of sources) {
      if (this.#live.has(url) || this.#dropped.has(url)) continue
      const pooled = {
        username,
        url,
        key,
        link: this.#connect({ username, url, key }),
        bytes: 0,
        dropped: '',
        queued: 0,
        retryAt: 0,
      }
      this.#live.set(url, pooled)
      added.push(pooled)
    }
    return added
  }

  /** False when it was already dropped. */
  drop(url: string, why: string): boolean {
    const source = this.#live.get(url)
    if (!source) return false
    source.dropped = why
    this.#live.delete(url)
    this.#dropped.set(url, source)
    return true
  }

  report(): SourceReport[] {
    return [...this.#live.values(), ...this.#dropped.values()].map(
      ({ username, url, bytes, dropped, queued, link }) => ({
        username,
        url,
        bytes,
        dropped,
        queued,
        route: link.route?.() ?? 'direct',
      }),
    )
  }

  /** Who was dropped and why, for the message when nobody is left. */
  droppedReasons(): string {
    return [...this.#dropped.values()].map((s) => `${s.username}: ${s.dropped}`).join('; ')
  }

  close() {
    for (const source of [...this.#live.values(), ...this.#dropped.values()]) source.link.close()
  }
}
