/** Part `at` (from 0) of a chunk cut into `of` parts. */
export type ChunkPart = { at: number; of: number }

/** The bytes of a chunk of `length` bytes that a part is: [start, start + length). */
export function partRange(length: number, { at, of }: ChunkPart): { start: number; length: number } {
  const start = Math.floor((length * at) / of)
  return { start, length: Math.floor((length * (at + 1)) / of) - start }
}

/** What became of a part's bytes: the first copy of a part still wanted, and whether its chunk is whole. */
export type PartArrival = 'stale' | 'kept' | 'complete'

type Cut = { of: number; arrived: Uint8Array; asking: Uint8Array }

/**
 * Readers' chunks cut into parts, as the ChunkScheduler keeps them: for each, which parts are in hand
 * and how many requests ask for each. A cut lasts until its chunk is written, asked whole again, or
 * spoiled (its parts made a chunk with the wrong hash); a part of an earlier cut is not one of its.
 */
export class ChunkParts {
  readonly #cuts = new Map<number, Cut>()

  has(index: number): boolean {
    return this.#cuts.has(index)
  }

  /** Cuts chunk `index` into `of` parts, none in hand or asked. */
  cut(index: number, of: number) {
    this.#cuts.set(index, { of, arrived: new Uint8Array(of), asking: new Uint8Array(of) })
  }

  drop(index: number) {
    this.#cuts.delete(index)
  }

  /** The first part not in hand, asked or not; none when every part is. */
  firstMissing(index: number): ChunkPart | undefined {
    const cut = this.#cuts.get(index)
    const at = cut?.arrived.indexOf(0) ?? -1
    return cut && at >= 0 ? { at, of: cut.of } : undefined
  }

  /** The first part neither in hand nor asked. */
  firstUnasked(index: number): ChunkPart | undefined {
    const cut = this.#cuts.get(index)
    if (!cut) return undefined
    for (let at = 0; at < cut.of; at++)
      if (cut.arrived[at] === 0 && cut.asking[at] === 0) return { at, of: cut.of }
    return undefined
  }

  /** True when `part` is of the chunk's cut and not in hand. */
  missing(index: number, part: ChunkPart): boolean {
    const cut = this.#of(index, part)
    return cut !== undefined && cut.arrived[part.at] === 0
  }

  /** True when `part` is missing and exactly one request asks for it. */
  askedOnce(index: number, part: ChunkPart): boolean {
    const cut = this.#of(index, part)
    return cut !== undefined && cut.arrived[part.at] === 0 && cut.asking[part.at] === 1
  }

  /** True when every part of the chunk's cut is in hand. */
  complete(index: number): boolean {
    const cut = this.#cuts.get(index)
    return cut !== undefined && allIn(cut)
  }

  /** A request asks for `part` now. */
  asked(index: number, part: ChunkPart) {
    const cut = this.#of(index, part)
    if (cut) cut.asking[part.at] = (cut.asking[part.at] as number) + 1
  }

  /** A request no longer asks for `part`. */
  unasked(index: number, part: ChunkPart) {
    const cut = this.#of(index, part)
    if (cut) cut.asking[part.at] = Math.max(0, (cut.asking[part.at] as number) - 1)
  }

  /** `part`'s bytes came: 'stale' when it is not of the cut or came already. */
  arrived(index: number, part: ChunkPart): PartArrival {
    const cut = this.#of(index, part)
    if (!cut || cut.arrived[part.at] === 1) return 'stale'
    cut.arrived[part.at] = 1
    return allIn(cut) ? 'complete' : 'kept'
  }

  #of(index: number, part: ChunkPart): Cut | undefined {
    const cut = this.#cuts.get(index)
    return cut?.of === part.of ? cut : undefined
  }
}

const allIn = (cut: Cut) => cut.arrived.every((arrived) => arrived === 1)
