import type { Database } from '../store/database.ts'
import { type NetworkStats, networkStats } from '../store/peers.ts'

/**
 * The dashboard and Prometheus poll the totals; each read also catches up on leases (a write when
 * peers came or went, in proportion to their files). So a result is reused for ten times as long
 * as it took to compute (at most 30 s): a small network sees fresh numbers, a large one a bounded load.
 */
export class CachedNetworkStats {
  readonly #db: Database
  #value: NetworkStats | undefined
  #validUntil = 0
  #pending: Promise<NetworkStats> | undefined

  constructor(db: Database) {
    this.#db = db
  }

  async get(now: number): Promise<NetworkStats> {
    if (this.#value && now < this.#validUntil) return this.#value
    this.#pending ??= this.#compute(now).finally(() => {
      this.#pending = undefined
    })
    return this.#pending
  }

  async #compute(now: number): Promise<NetworkStats> {
    const started = performance.now()
    const value = await networkStats(this.#db, now)
    const took = performance.now() - started
    this.#value = value
    this.#validUntil = now + Math.min(30_000, took * 10)
    return value
  }
}
