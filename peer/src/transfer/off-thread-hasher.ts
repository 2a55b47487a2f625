import { Worker } from 'node:worker_threads'
import { resolvers } from '../resolvers.ts'
import type { DownloadHasher } from './prefix-hasher.ts'

/** What the worker is asked: check a chunk; the file's first `upTo` bytes are final; the digest at `digest`. */
type Request =
  | { verify: number; data: Uint8Array; expected: Uint8Array }
  | { upTo: number }
  | { digest: number }
type Reply = { verified: number; ok: boolean } | { hex: string } | { error: string }

/**
 * The hashing of a big download, on a worker thread, so the receiving thread never hashes a byte: it
 * checks each chunk where it landed (the download client's buffers are shared memory, so nothing is
 * copied across; a chunk in ordinary memory is copied by postMessage), and hashes the whole file by
 * reading the part file back (from the page cache) as its verified prefix grows. A worker costs about
 * 30 ms and 17 MiB to start, which is why small downloads hash in line (PrefixHasher).
 */
export class OffThreadHasher implements DownloadHasher {
  readonly #worker: Worker
  readonly #checks = new Map<number, (ok: boolean) => void>()
  readonly #digest = resolvers<string>()
  #failure: Error | undefined
  #nextCheck = 0
  #final = 0

  constructor(path: string) {
    this.#worker = new Worker(WORKER_URL, {
      workerData: { path },
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
    })
    this.#worker.unref() // a download that is never finished must not hold the process open
    this.#digest.promise.catch(() => {}) // reported by digest(); a download that ends otherwise never asks
    const fail = (err: Error) => {
      this.#failure ??= err
      this.#digest.reject(this.#failure)
      for (const settle of this.#checks.values()) settle(false)
      this.#checks.clear()
    }
    this.#worker.on('message', (reply: Reply) => {
      if ('verified' in reply) {
        this.#checks.get(reply.verified)?.(reply.ok)
        this.#checks.delete(reply.verified)
      } else if ('hex' in reply) this.#digest.resolve(reply.hex)
      else fail(new Error(`cannot hash the downloaded file: ${reply.error}`))
    })
    this.#worker.once('error', fail)
    this.#worker.once('exit', (code) => fail(new Error(`the hashing thread exited (${code})`)))
  }

  /** False also when the thread has failed: the chunk is then fetched again, and digest() says why. */
  verify(data: Uint8Array, expected: Uint8Array): Promise<boolean> {
    if (this.#failure) return Promise.resolve(false)
    const id = this.#nextCheck++
    return new Promise((resolve) => {
      this.#checks.set(id, resolve)
      // Its own 32 bytes: a view into a larger buffer would be cloned whole.
      this.#post({ verify: id, data, expected: new Uint8Array(expected) })
    })
  }

  offer() {} // the worker reads what it hashes: nothing is handed across

  advanceTo(bytes: number) {
    if (bytes <= this.#final) return
    this.#final = bytes
    this.#post({ upTo: bytes })
  }

  digest(size: number): Promise<string> {
    this.#post({ digest: size })
    return this.#digest.promise
  }

  close() {
    void this.#worker.terminate()
  }

  #post(request: Request) {
    if (!this.#failure) this.#worker.postMessage(request)
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
  let hashed = 0
  let final = 0
  let wanted: number | undefined
  let running = false
  let stopped = false
  // Chunk checks are answered as they come, between the reads below.
  // (Types are erased, so Request and Reply are the main side's own.)
  const reply = (message: Reply) => port.postMessage(message)
  port.on('message', (message: Request) => {
    if ('verify' in message) {
      const sum = createHash('sha256').update(message.data).digest()
      reply({ verified: message.verify, ok: sum.equals(message.expected) })
      return
    }
    if (stopped) return
    if ('digest' in message) wanted = message.digest
    final = Math.max(final, 'upTo' in message ? message.upTo : message.digest)
    void run()
  })
  const handle = open((workerData as { path: string }).path, 'r')
  handle.catch(() => {}) // reported by run()
  // 1 MiB a read: a chunk check waits at most one such piece's hashing.
  const buffer = Buffer.allocUnsafe(1024 * 1024)
  const whole = createHash('sha256')
  async function run() {
    if (running) return
    running = true
    try {
      const file = await handle
      while (hashed < final && !stopped) {
        const length = Math.min(buffer.length, final - hashed)
        const { bytesRead } = await file.read(buffer, 0, length, hashed)
        if (bytesRead === 0) throw new Error(`the file ends at ${hashed} bytes`)
        whole.update(buffer.subarray(0, bytesRead))
        hashed += bytesRead
      }
      if (wanted !== undefined && hashed >= wanted && !stopped) {
        stopped = true
        reply({ hex: whole.digest('hex') })
      }
    } catch (err) {
      stopped = true
      reply({ error: err instanceof Error ? err.message : String(err) })
    } finally {
      running = false
    }
  }
}

const WORKER_URL = new URL(`data:text/javascript,${encodeURIComponent(`(${hashInWorker})()`)}`)
