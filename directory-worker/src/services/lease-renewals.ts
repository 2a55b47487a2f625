import type { Database } from '../store/database.ts'
import { renewSessionLeases } from '../store/peers.ts'
import { nextTurn } from '../util/next-turn.ts'

type Waiting = { sessionId: string; resolve: (renewed: boolean) => void; reject: (err: unknown) => void }

/**
 * Heartbeats that arrive in the same turn of the event loop renew their leases in one statement
 * and one commit (group commit): under load a commit per heartbeat was most of its storage time.
 * Each heartbeat is answered only once its renewal is committed, as before.
 */
/** What renewing needs of the directory's deps. */
type RenewalDeps = {
  db: Database
  now: () => number
  settings: { leaseSeconds: number; leaseSlackSeconds: number }
}

export class LeaseRenewals {
  readonly #deps: RenewalDeps
  #waiting: Waiting[] = []

  constructor(deps: RenewalDeps) {
    this.#deps = deps
  }

  /** True once the session's lease is renewed; false when the session is not an open peer session. */
  renew(sessionId: string): Promise<boolean> {
    return new Promise((resolve, reject) => {
      if (this.#waiting.push({ sessionId, resolve, reject }) === 1) nextTurn(() => void this.#flush())
    })
  }

  async #flush() {
    const deps = this.#deps
    const batch = this.#waiting
    this.#waiting = []
    try {
      const renewed = await renewSessionLeases(
        deps.db,
        [...new Set(batch.map((waiting) => waiting.sessionId))],
        deps.now(),
        deps.settings.leaseSeconds,
        deps.settings.leaseSlackSeconds,
      )
      for (const waiting of batch) waiting.resolve(renewed.has(waiting.sessionId))
    } catch (err) {
      for (const waiting of batch) waiting.reject(err)
    }
  }
}
