import { Worker } from 'node:worker_threads'

/**
 * The whole-file SHA-256 of a download, computed while it runs: a worker thread reads the temporary
 * file behind the verified prefix (chunks arrive out of order; the prefix only grows) and hashes it,
 * so the check before the rename costs only the tail and never takes the receiving thread's time.
 */
const POST_STEP_BYTES = 16 * 1024 * 1024

export class PrefixHasher {
  readonly #worker: Worker
  readonly #digest: Promise<string>
  #posted = 0

  constructor(path: string) {
    this.#worker = new Worker(new URL('./prefix-hasher-worker.ts', import.meta.url), { workerData: { path } })
    this.#digest = new Promise((resolve, reject) => {
      this.#worker.once('message', (message: { sha256?: string; error?: string }) =>
        message.sha256 ? resolve(message.sha256) : reject(new Error(message.error)),
      )
      this.#worker.once('error', reject)
      this.#worker.once('exit', (code) => reject(new Error(`the hashing thread exited (${code})`)))
    })
    this.#digest.catch(() => {}) // read by digest(); an unread failure must not end the process
  }

  /** The first `bytes` of the file are final: hash them when the thread gets to them. */
  advanceTo(bytes: number) {
    // Messages cost the receiving thread too: tell the worker in steps, not per chunk.
    if (bytes < this.#posted + POST_STEP_BYTES) return
    this.#posted = bytes
    this.#worker.postMessage({ upTo: bytes })
  }

  /** The file's hash once all `size` bytes are final. */
  async digest(size: number): Promise<string> {
    this.#worker.postMessage({ upTo: size, end: size })
    try {
      return await this.#digest
    } finally {
      await this.#worker.terminate()
    }
  }

  async cancel() {
    await this.#worker.terminate()
  }
}
