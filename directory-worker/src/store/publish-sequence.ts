import type { InStatement } from '@libsql/client'

/**
 * What a search's `cursor` is: a number (migration 12) that every write making rows live moves on,
 * in the same transaction. A row holds the number of the write that made it live as it is (files.
 * published), or null for "with its peer's generation flip" (peers.index_published): a big write's
 * rows are written pending, long before they go live, so they take their number at the flip. A row
 * written again unchanged (a peer's login republishing its index, a generation copying the live
 * one) keeps its number: a returning holder is not news, a new holder of old content is.
 */

/** The number the write under way gives what it makes live: one more than the last. */
export const NEXT_PUBLISHED = '(SELECT n + 1 FROM publish_sequence WHERE id = 1)'

/** A row's number as readers see it (`f` a files row, `p` its peer). */
export const PUBLISHED = (f: string, p: string) => `coalesce(${f}.published, ${p}.index_published)`

/**
 * Closes a write's publishing, last in its batch: the sequence moves on only if the write gave
 * its number to something (a write that changed nothing leaves every cursor current).
 */
export const closePublishing: InStatement = {
  sql: `UPDATE publish_sequence SET n = n + 1 WHERE id = 1 AND (
          EXISTS (SELECT 1 FROM files WHERE published = publish_sequence.n + 1)
          OR EXISTS (SELECT 1 FROM peers WHERE index_published = publish_sequence.n + 1))`,
  args: [],
}
