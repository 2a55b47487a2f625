/** A token bucket shared by every stream a daemon serves: --max-upload-rate caps the total. */
export class RateLimiter {
  readonly #bytesPerSecond: number
  #available: number
  #last = performance.now()

  constructor(bytesPerSecond: number) {
    this.#bytesPerSecond = bytesPerSecond
    // A burst of a quarter second smooths scheduling without exceeding the rate over time.
    this.#available = bytesPerSecond / 4
  }

  /** Waits until `bytes` may be sent. */
  async take(bytes: number, signal?: AbortSignal) {
    for (;;) {
      const now = performance.now()
      this.#available = Math.min(
        this.#bytesPerSecond / 4,
        this.#available + ((now - this.#last) / 1000) * this.#bytesPerSecond,
      )
      this.#last = now
      if (this.#available >= bytes || this.#available >= this.#bytesPerSecond / 4) {
        this.#available -= bytes
        return
      }
      if (signal?.aborted) return
      const wait = ((bytes - this.#available) / this.#bytesPerSecond) * 1000
      await new Promise((r) => setTimeout(r, Math.min(250, Math.max(1, wait))))
    }
  }
}
