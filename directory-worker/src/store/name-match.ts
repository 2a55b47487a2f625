// How a name query is put to the indexes: the name_key range of a prefix, the trigram index's MATCH.

/** FTS5 phrase syntax: the query as one quoted string, so no operator in it is ever interpreted. */
const ftsPhrase = (text: string) => `"${text.replaceAll('"', '""')}"`

/** Characters in each end of a long query that the trigram index is asked for. */
const FTS_PIECE = 8

/**
 * What the trigram index is asked for to find names holding `key`: the whole phrase, or for a long
 * key (a pasted file name) its first and last pieces. Every name holding the key holds both, and
 * the stage checks the whole key on each candidate. A phrase walks the list of each of its trigrams,
 * and a long name has many, some (" - ", ".mp") in most names: the two pieces walk far fewer.
 */
export function ftsQuery(key: string): string {
  const chars = [...key]
  if (chars.length <= 3 * FTS_PIECE) return ftsPhrase(key)
  const head = chars.slice(0, FTS_PIECE).join('')
  const tail = chars.slice(-FTS_PIECE).join('')
  return `${ftsPhrase(head)} AND ${ftsPhrase(tail)}`
}

/** Upper bound of the name_key range that starts with `prefix` (for an index range scan). */
export const prefixEnd = (prefix: string) => `${prefix}\u{10FFFF}`
