import { Worker } from 'node:worker_threads'
import type { WholeFileHasher } from './prefix-hasher.ts'

/** What the worker is told: the file's first `upTo` bytes are final; answer the digest at `digest`. */
type Request = { upTo: number } | { digest: number }
type Reply = { hex: string } | { error: string }

/**
 * The whole-file SHA-256 of a big download, computed by a worker thread that reads the part file back
 * (from the page cache) as its verified prefix grows, so the receiving thread never hashes a byte of
 * it. A worker costs about 30 ms and 17 MiB to start, which is why small downloads hash in line.
 */
export class OffThreadHasher implements WholeFileHasher {
  readonly #worker: Worker
  /** The worker's one message: the digest, or why it stopped. */
  readonly #answer: Promise<Reply>
  readonly #failed: Promise<never>
  #final = 0

  constructor(path: string) {
    this.#worker = new Worker(WORKER_URL, {
      workerData: { path },
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
    })
    this.#worker.unref() // a download that is never finished must not hold the process open
    this.#answer = new Promise((resolve) => this.#worker.once('message', resolve))
    this.#failed = new Promise((_, reject) => {
      this.#worker.once('error', reject)
      this.#worker.once('exit', (code) => reject(new Error(`the hashing thread exited (${code})`)))
    })
    this.#failed.catch(() => {}) // reported by digest(); a download that ends otherwise never asks
  }

  offer() {} // the worker reads what it hashes: nothing is handed across

  advanceTo(bytes: number) {
    if (bytes <= this.#final) return
    this.#final = bytes
    this.#post({ upTo: bytes })
  }

  async digest(size: number): Promise<string> {
    this.#post({ digest: size })
    const answer = await Promise.race([this.#answer, this.#failed])
    if ('error' in answer) throw new Error(`cannot hash the downloaded file: ${answer.error}`)
    return answer.hex
  }

  close() {
    void this.#worker.terminate()
  }

  #post(request: Request) {
    this.#worker.postMessage(request)
  }
}

/**
 * The worker's whole program. It runs from a data: URL rather than a file of its own so that it is the
 * same from the checkout and from the bundled package, whose chunks have no stable file to point at;
 * so it refers to nothing outside itself, and takes Node's modules with getBuiltinModule, which no
 * bundler or test runner rewrites as they do import().
 */
async function hashInWorker() {
  const { parentPort, workerData } = process.getBuiltinModule('node:worker_threads')
  const { createHash } = process.getBuiltinModule('node:crypto')
  const { open } = process.getBuiltinModule('node:fs/promises')
  const port = parentPort as NonNullable<typeof parentPort>
  const handle = await open((workerData as { path: string }).path, 'r')
  const hash = createHash('sha256')
  const buffer = Buffer.allocUnsafe(4 * 1024 * 1024)
  let hashed = 0
  let final = 0
  let wanted: number | undefined
  let running = false
  const run = async () => {
    if (running) return
    running = true
    try {
      while (hashed < final) {
        const length = Math.min(buffer.length, final - hashed)
        const { bytesRead } = await handle.read(buffer, 0, length, hashed)
        if (bytesRead === 0) throw new Error(`the file ends at ${hashed} bytes`)
        hash.update(buffer.subarray(0, bytesRead))
        hashed += bytesRead
      }
      if (wanted !== undefined && hashed >= wanted) port.postMessage({ hex: hash.digest('hex') })
    } catch (err) {
      port.postMessage({ error: err instanceof Error ? err.message : String(err) })
      final = -1
    } finally {
      running = false
    }
  }
  port.on('message', (request: { upTo?: number; digest?: number }) => {
    if (final < 0) return
    if (request.digest !== undefined) wanted = request.digest
    final = Math.max(final, request.upTo ?? 0, request.digest ?? 0)
    void run()
  })
}

const WORKER_URL = new URL(`data:text/javascript,${encodeURIComponent(`(${hashInWorker})()`)}`)
