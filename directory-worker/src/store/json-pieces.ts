/**
 * D1 refuses a bound string over 2,000,000 bytes (SQLITE_TOOBIG), and an index of 100,000 files is
 * about 25 MB of JSON. So set-based writes bind their rows as several JSON arrays, each within this
 * many UTF-8 bytes, all in one atomic batch. libSQL takes the same pieces (one store, one shape).
 */
export const PIECE_BYTES = 1_900_000

const encoder = new TextEncoder()

/** `items` in order as JSON arrays of at most `maxBytes` each (an item bigger than that alone); never none. */
export function jsonPieces<T>(items: T[], maxBytes = PIECE_BYTES): { items: T[]; json: string }[] {
  const pieces: { items: T[]; json: string }[] = []
  let current: { items: T[]; parts: string[]; bytes: number } = { items: [], parts: [], bytes: 2 }
  const close = () => {
    pieces.push({ items: current.items, json: `[${current.parts.join(',')}]` })
    current = { items: [], parts: [], bytes: 2 }
  }
  for (const item of items) {
    const json = JSON.stringify(item)
    const bytes = encoder.encode(json).length + 1
    if (current.items.length > 0 && current.bytes + bytes > maxBytes) close()
    current.items.push(item)
    current.parts.push(json)
    current.bytes += bytes
  }
  if (current.items.length > 0 || pieces.length === 0) close()
  return pieces
}
