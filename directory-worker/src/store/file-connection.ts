/**
 * The settings of one connection to a directory's local libSQL file. They live in the connection, not
 * in the file, so every connection made to it runs them first.
 * - synchronous=NORMAL: in WAL mode it stays consistent after a crash and skips an fsync per commit (a
 *   power cut may lose the last heartbeats, which the next ones restore).
 * - busy_timeout: a writer from another process (the `users` command) is waited for, not failed on.
 * - cache_size: 64 MiB of pages instead of SQLite's 2 MiB. At a million files the name and trigram
 *   indexes a search walks, and the peer rows its liveness check reads, no longer fall out between
 *   requests; `npm run bench:scale` measured 0.4–0.5 ms less per search. It is a cap, not an
 *   allocation: a small directory's cache stays small.
 */
export const FILE_CONNECTION_PRAGMAS = [
  'PRAGMA synchronous = NORMAL',
  'PRAGMA busy_timeout = 5000',
  'PRAGMA cache_size = -65536',
] as const
