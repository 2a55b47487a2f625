/**
 * Buffers kept across the calls of one connection or server, made once and recycled. A buffer made per
 * call lives as long as the call, outlives a scavenge of the peer's 1 MiB young generation and is
 * promoted; freed with the call, each such megabyte then counts towards the next full collection, so a
 * transfer ran tens of them per GiB. Kept, a buffer is promoted once and stays.
 */
export class SpareBuffers {
  readonly #spare: Buffer[] = []
  readonly #keep: number
  readonly #shared: boolean

  /**
   * `keep`: how many spare buffers to hold on to (what the calls running at once use). `shared`: made
   * in shared memory, so another thread can read one where it is (a hashing thread, handed a view).
   */
  constructor(keep: number, options: { shared?: boolean } = {}) {
    this.#keep = keep
    this.#shared = options.shared ?? false
  }

  /** A buffer of `size` bytes, of unspecified content. */
  take(size: number): Buffer {
    const index = this.#spare.findIndex((b) => b.length === size)
    if (index < 0) return this.#shared ? Buffer.from(new SharedArrayBuffer(size)) : Buffer.allocUnsafe(size)
    return this.#spare.splice(index, 1)[0] as Buffer
  }

  /** Takes back a buffer nothing uses any more (whole, as `take` made it). */
  give(buffer: Buffer) {
    if (this.#spare.length < this.#keep) this.#spare.push(buffer)
  }
}

/**
 * Copies `source` into `target` at `at` as one native memcpy. Buffer.copy and TypedArray.set copy into
 * shared memory (the buffers above with `shared`) a word at a time, as V8 does for memory another thread
 * may touch: 7% of a downloading daemon's CPU for 1 GiB. Filling a range exactly as long as `source`
 * with it is a plain memcpy in Node's C++ (so the two must not overlap: no caller copies within a buffer).
 */
export function copyInto(target: Buffer, at: number, source: Uint8Array) {
  if (source.length > 0) target.fill(source, at, at + source.length)
}
