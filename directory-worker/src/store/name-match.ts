// How a search query is put to the indexes: its words, the name_key range of a prefix, the trigram index's MATCH.

/** FTS5 phrase syntax: the query as one quoted string, so no operator in it is ever interpreted. */
const ftsPhrase = (text: string) => `"${text.replaceAll('"', '""')}"`

/** Keys longer than this (in characters) are looked up by a few of their trigrams, not as a phrase. */
export const LONGEST_PHRASE = 24

/**
 * What the trigram index is asked for to find names holding `key`: the whole phrase, or for a long
 * key (a pasted file name) the two of its trigrams fewest `sample` names hold. Every name holding
 * the key holds both, and the stage checks the whole key on each candidate. The cost of a MATCH is
 * that of walking the list of its commonest trigram ("mkv", " - " are in most names), however rare
 * the others: a long name is almost always found through two rare ones (its digits, an odd word).
 */
export function ftsQuery(key: string, sample: readonly string[] = []): string {
  const chars = [...key]
  if (chars.length <= LONGEST_PHRASE) return ftsPhrase(key)
  const trigrams = trigramsOf(key)
  const holders = new Map(
    trigrams.map((trigram) => [trigram, sample.filter((name) => name.includes(trigram)).length]),
  )
  const [rarest, next] = trigrams.sort((a, b) => (holders.get(a) ?? 0) - (holders.get(b) ?? 0))
  return `${ftsPhrase(rarest ?? '')} AND ${ftsPhrase(next ?? '')}`
}

/** Upper bound of the name_key range that starts with `prefix` (for an index range scan). */
export const prefixEnd = (prefix: string) => `${prefix}\u{10FFFF}`

/** The trigram index finds only what holds at least this many characters. */
export const TRIGRAM = 3

/**
 * The words of a folded query: split at white space and at `/` (names hold no `/`, so a pasted peer
 * path is its folders' and name's words), each once, none that another word holds (it adds nothing).
 */
export function queryWords(key: string): string[] {
  const words = [...new Set(key.split(/[\s/]+/u).filter((word) => word !== ''))]
  return words.filter((word) => !words.some((other) => other !== word && other.includes(word)))
}

/** Whether the trigram index can look `word` up. */
export const hasTrigram = (word: string) => [...word].length >= TRIGRAM

function trigramsOf(word: string): string[] {
  const chars = [...word]
  return [...new Set(chars.slice(2).map((_, i) => chars.slice(i, i + 3).join('')))]
}

/** The most words whose trigrams one MATCH asks for (each list walked costs; four commonish words together are rare). */
const MOST_WORDS_ASKED = 4

/**
 * What the trigram index is asked for to find texts holding every one of `words` (each of three
 * characters or more): each word's trigram fewest `sample` texts hold, the rarest MOST_WORDS_ASKED
 * of those, ANDed. Every text holding the words holds them; the stage checks each word on each
 * candidate. Words' rare parts together are rarer than any (a word no name holds finds nothing at
 * once; three folder words each in a fifth of the paths are together in a hundredth); two trigrams
 * of one word are not, and ANDed whole words walked the lists of trigrams in a tenth of the rows.
 */
export function wordsFtsQuery(words: readonly string[], sample: readonly string[]): string {
  const holders = (trigram: string) => sample.filter((text) => text.includes(trigram)).length
  const rarest = words
    .flatMap((word) => {
      const [best] = trigramsOf(word)
        .map((trigram) => ({ trigram, n: holders(trigram) }))
        .sort((a, b) => a.n - b.n)
      return best ? [best] : []
    })
    .sort((a, b) => a.n - b.n)
  return [...new Set(rarest.slice(0, MOST_WORDS_ASKED).map(({ trigram }) => trigram))]
    .map(ftsPhrase)
    .join(' AND ')
}
