/** A sleep that can be cut short: `wake()` ends the one in progress at once (a daemon loop's pause). */
export class Alarm {
  #wake: (() => void) | undefined

  sleep(ms: number): Promise<void> {
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
    this.#wake?.()
  }
}
