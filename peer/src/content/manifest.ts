import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'

/** Files are cut into 1 MiB chunks; each is hashed on its own so it can be checked on arrival. */
export const CHUNK_SIZE = 1024 * 1024

export type Manifest = {
  size: number
  sha256: string
  chunkSize: number
  /** Raw 32-byte SHA-256 of each chunk, in order. */
  chunkHashes: Buffer[]
  /** SHA-256 over the concatenated chunk hashes: what the directory's index carries. */
  manifest: string
}

export const manifestHash = (chunkHashes: Buffer[]) =>
  createHash('sha256').update(Buffer.concat(chunkHashes)).digest('hex')

export const chunkCount = (size: number, chunkSize: number) => Math.ceil(size / chunkSize)

export const chunkLength = (index: number, size: number, chunkSize: number) =>
  Math.min(chunkSize, size - index * chunkSize)

/** Builds a manifest from bytes fed in order, in any slices: the whole-file hash and every chunk hash. */
export class ManifestBuilder {
  readonly #chunkSize: number
  readonly #whole = createHash('sha256')
  readonly #chunkHashes: Buffer[] = []
  #chunk = createHash('sha256')
  #inChunk = 0
  #size = 0

  constructor(chunkSize = CHUNK_SIZE) {
    this.#chunkSize = chunkSize
  }

  get size(): number {
    return this.#size
  }

  update(bytes: Uint8Array) {
    this.#whole.update(bytes)
    this.#size += bytes.length
    let at = 0
    while (at < bytes.length) {
      const take = Math.min(this.#chunkSize - this.#inChunk, bytes.length - at)
      this.#chunk.update(bytes.subarray(at, at + take))
      this.#inChunk += take
      at += take
      if (this.#inChunk === this.#chunkSize) {
        this.#chunkHashes.push(this.#chunk.digest())
        this.#chunk = createHash('sha256')
        this.#inChunk = 0
      }
    }
  }

  finish(): Manifest {
    if (this.#inChunk > 0) this.#chunkHashes.push(this.#chunk.digest())
    const chunkHashes = this.#chunkHashes
    return {
      size: this.#size,
      sha256: this.#whole.digest('hex'),
      chunkSize: this.#chunkSize,
      chunkHashes,
      manifest: manifestHash(chunkHashes),
    }
  }
}

/** One pass over the file: the whole-file hash and every chunk hash, streaming, memory flat. */
export async function hashFile(path: string, chunkSize = CHUNK_SIZE): Promise<Manifest> {
  const builder = new ManifestBuilder(chunkSize)
  for await (const data of createReadStream(path, { highWaterMark: chunkSize }))
    builder.update(data as Buffer)
  return builder.finish()
}

export const verifyChunk = (data: Uint8Array, expected: Uint8Array) =>
  createHash('sha256').update(data).digest().equals(Buffer.from(expected))
