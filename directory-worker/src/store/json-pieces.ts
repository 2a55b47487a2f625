/**
 * D1 refuses a bound string over 2,000,000 bytes (SQLITE_TOOBIG), and an index of 100,000 files is
 * about 25 MB of JSON. So set-based writes bind their rows as several JSON arrays, each within this
 * many UTF-8 bytes, all in one atomic batch. libSQL takes the same pieces (one store, one shape).
 */
export const PIECE_BYTES = 1_900_000

const encoder = new TextEncoder()

/**
 * `items` in order as JSON arrays of at most `maxBytes` each (an item bigger than that alone), each
 * made only when asked for (a big write keeps one piece's JSON at a time); never none.
 */
export function* eachJsonPiece<T>(
  items: Iterable<T>,
  maxBytes = PIECE_BYTES,
  toJson: (item: T) => string = JSON.stringify,
): Generator<{ count: number; json: string }> {
  let parts: string[] = []
  let bytes = 2
  let yielded = false
  for (const item of items) {
    const json = toJson(item)
    const size = encoder.encode(json).length + 1
    if (parts.length > 0 && bytes + size > maxBytes) {
      yield { count: parts.length, json: `[${parts.join(',')}]` }
      yielded = true
      parts = []
      bytes = 2
    }
    parts.push(json)
    bytes += size
  }
  if (parts.length > 0 || !yielded) yield { count: parts.length, json: `[${parts.join(',')}]` }
}

/** All of `eachJsonPiece` at once, for one batch. */
export const jsonPieces = <T>(items: T[], maxBytes = PIECE_BYTES) => [...eachJsonPiece(items, maxBytes)]
