import { createHash } from 'node:crypto'
import type { FileHandle } from 'node:fs/promises'
import { verifyChunk } from '../content/manifest.ts'

const READ_BYTES = 4 * 1024 * 1024

/**
 * A download's hashing: each chunk checked on arrival, and the whole-file SHA-256 computed while the
 * download runs, so the check before the rename costs nothing extra at the end.
 */
export interface DownloadHasher {
  /** Whether `data` hashes to `expected` (the manifest's hash of its chunk); `data` is read, not kept. */
  verify(data: Uint8Array, expected: Uint8Array): Promise<boolean>
  /** Bytes at `position` were just verified and written. */
  offer(position: number, data: Uint8Array): void
  advanceTo(bytes: number): void
  /** The file's hash, once all `size` bytes are final. */
  digest(size: number): Promise<string>
  close(): void
}

/**
 * A DownloadHasher on the calling thread: chunks that complete in file order are hashed from memory as
 * they are written; the rest are read back (from the page cache) once the verified prefix reaches them.
 */
export class PrefixHasher implements DownloadHasher {
  readonly #handle: FileHandle
  readonly #hash = createHash('sha256')
  #hashed = 0
  #final = 0
  #catchingUp: Promise<void> | undefined
  /** Made on the first catch-up and kept: a fresh buffer each time would be fresh pages to fault in. */
  #readBuffer: Buffer | undefined
  #failure: unknown

  constructor(handle: FileHandle) {
    this.#handle = handle
  }

  async verify(data: Uint8Array, expected: Uint8Array) {
    return verifyChunk(data, expected)
  }

  offer(position: number, data: Uint8Array) {
    if (this.#catchingUp || position !== this.#hashed) return
    this.#hash.update(data)
    this.#hashed += data.length
  }

  advanceTo(bytes: number) {
    if (this.#failure !== undefined) return
    this.#final = Math.max(this.#final, bytes)
    if (this.#hashed < this.#final) this.#catchingUp ??= this.#catchUp()
  }

  async digest(size: number): Promise<string> {
    this.advanceTo(size)
    while (this.#catchingUp) await this.#catchingUp
    if (this.#failure) throw this.#failure
    return this.#hash.digest('hex')
  }

  close() {}

  async #catchUp() {
    try {
      this.#readBuffer ??= Buffer.allocUnsafe(READ_BYTES)
      const buffer = this.#readBuffer
      while (this.#hashed < this.#final) {
        const length = Math.min(READ_BYTES, this.#final - this.#hashed)
        const { bytesRead } = await this.#handle.read(buffer, 0, length, this.#hashed)
        if (bytesRead === 0) throw new Error(`the file ends at ${this.#hashed} bytes`)
        this.#hash.update(buffer.subarray(0, bytesRead))
        this.#hashed += bytesRead
      }
    } catch (err) {
      this.#failure ??= err // digest() reports it; a download that ends otherwise never asks
    } finally {
      this.#catchingUp = undefined
    }
  }
}
