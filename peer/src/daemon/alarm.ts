/**
 * A sleep that can be cut short: `wake()` ends the one in progress at once (a daemon loop's pause). A
 * wake while nobody sleeps (the loop is busy with a request) is kept for the next sleep, which then ends
 * at once: what the wake asked for (a change to publish, a stop) is not left for the sleep after.
 */
export class Alarm {
  #wake: (() => void) | undefined
  #woken = false

  sleep(ms: number): Promise<void> {
    if (this.#woken) {
      this.#woken = false
      return Promise.resolve()
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        if (this.#wake === done) this.#wake = undefined
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.#wake = done
    })
  }

  wake() {
    if (this.#wake) this.#wake()
    else this.#woken = true
  }
}
