/** Why an index write was not let in: its account already has one in flight, or the directory is full. */
export type SlotRefusal = 'account_busy' | 'full'

/**
 * Index writes in flight: one per account, and a budget of bytes overall (`writes` bodies of the
 * largest size; smaller bodies take their share), taken before a body is read and given back when
 * the write ends however it ends. Memory for index bodies is bounded by the budget: a write past it
 * is refused, never queued. In memory, so per process (per isolate on Workers).
 */
export class IndexWriteSlots {
  readonly #accounts = new Set<string>()
  readonly #capacity: number
  #used = 0

  constructor(writes: number, largestBody: number) {
    this.#capacity = writes * largestBody
  }

  /** A release function when let in (call it exactly once), or why not. */
  take(account: string, bytes: number): (() => void) | SlotRefusal {
    const key = account.toLowerCase()
    if (this.#accounts.has(key)) return 'account_busy'
    if (this.#used + bytes > this.#capacity) return 'full'
    this.#accounts.add(key)
    this.#used += bytes
    let released = false
    return () => {
      if (released) return
      released = true
      this.#accounts.delete(key)
      this.#used -= bytes
    }
  }
}
