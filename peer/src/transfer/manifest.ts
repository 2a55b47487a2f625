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

/** One pass over the file: the whole-file hash and every chunk hash, streaming, memory flat. */
export async function hashFile(path: string, chunkSize = CHUNK_SIZE): Promise<Manifest> {
  const whole = createHash('sha256')
  const chunkHashes: Buffer[] = []
  let chunk = createHash('sha256')
  let inChunk = 0
  let size = 0
  for await (const data of createReadStream(path, { highWaterMark: chunkSize })) {
    const bytes = data as Buffer
    whole.update(bytes)
    size += bytes.length
    let at = 0
    while (at < bytes.length) {
      const take = Math.min(chunkSize - inChunk, bytes.length - at)
      chunk.update(bytes.subarray(at, at + take))
      inChunk += take
      at += take
      if (inChunk === chunkSize) {
        chunkHashes.push(chunk.digest())
        chunk = createHash('sha256')
        inChunk = 0
      }
    }
  }
  if (inChunk > 0) chunkHashes.push(chunk.digest())
  return { size, sha256: whole.digest('hex'), chunkSize, chunkHashes, manifest: manifestHash(chunkHashes) }
}

export const verifyChunk = (data: Uint8Array, expected: Uint8Array) =>
  createHash('sha256').update(data).digest().equals(Buffer.from(expected))
