/**
 * Who holds one transfer open: a `peer get`/`peer cat` call while it lasts, a gateway request (and a
 * seek's grace after it). Counts them, and says when the last one lets go.
 */
export class TransferHolds {
  #holders = 0
  readonly #onUnheld: () => void

  /** `onUnheld` runs each time the last holder lets go. */
  constructor(onUnheld: () => void) {
    this.#onUnheld = onUnheld
  }

  get held(): boolean {
    return this.#holders > 0
  }

  /** Holds the transfer open until the returned function is called (again: no effect). */
  hold(): () => void {
    this.#holders++
    let held = true
    return () => {
      if (!held) return
      held = false
      this.#holders--
      if (this.#holders === 0) this.#onUnheld()
    }
  }
}
