import { copyInto, SpareBuffers } from '../wire/spare-buffers.ts'

/** Buffers kept to be used again: about the chunks a reader's window has in parts at once. */
const KEPT_BUFFERS = 16

/**
 * Readers' chunks that arrive in parts from several sources (ChunkScheduler's `part`): each part's
 * bytes in place in a buffer of its chunk, and how many each source sent, until the chunk is whole and
 * taken to be verified. One buffer per chunk asked in parts, which the scheduler keeps to readers'
 * windows; a chunk asked whole again is forgotten then. The buffers are in shared memory, so the
 * hashing thread reads a whole chunk where it is, and are used again once given back.
 */
export class ChunkAssembly<Source> {
  readonly #lengthOf: (index: number) => number
  readonly #chunks = new Map<number, { data: Buffer; shares: Map<Source, number> }>()
  readonly #buffers = new SpareBuffers(KEPT_BUFFERS, { shared: true })

  constructor(lengthOf: (index: number) => number) {
    this.#lengthOf = lengthOf
  }

  /** Keeps a part's bytes, which start `start` bytes into chunk `index`. */
  keep(index: number, start: number, bytes: Uint8Array, source: Source) {
    let chunk = this.#chunks.get(index)
    if (!chunk) {
      chunk = { data: this.#buffers.take(this.#lengthOf(index)), shares: new Map() }
      this.#chunks.set(index, chunk)
    }
    copyInto(chunk.data, start, bytes)
    chunk.shares.set(source, (chunk.shares.get(source) ?? 0) + bytes.length)
  }

  /** The whole chunk, with each source's share of its bytes; forgotten here, `recycle` it once used. */
  take(index: number): { data: Buffer; shares: ReadonlyMap<Source, number> } | undefined {
    const chunk = this.#chunks.get(index)
    this.#chunks.delete(index)
    return chunk
  }

  forget(index: number) {
    const chunk = this.take(index)
    if (chunk) this.recycle(chunk.data)
  }

  /** A taken chunk's buffer, verified and written (or refused): nothing reads it any more. */
  recycle(data: Buffer) {
    this.#buffers.give(data)
  }
}
