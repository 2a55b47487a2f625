import type { Database } from './database.ts'

/** The error a write batch fails with when it leaves an index past its limit (migration 4). */
export const INDEX_OVER_LIMIT = 'peerdir: index over its file limit'

/** Numbered schema changes, applied in order, each in one batch with its _migrations row. Never edit one that shipped. */
export const migrations: { version: number; name: string; statements: string[] }[] = [
  {
    version: 1,
    name: 'peers, sessions, keys, files with trigram search',
    statements: [
      `CREATE TABLE peers (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL,
        url TEXT NOT NULL,
        lease_expires_at INTEGER NOT NULL DEFAULT 0,
        last_seen INTEGER NOT NULL,
        file_count INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
      )`,
      'CREATE INDEX peers_lease ON peers (lease_expires_at)',
      `CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        peer_id INTEGER NOT NULL REFERENCES peers (id),
        created_at INTEGER NOT NULL,
        revoked_at INTEGER,
        -- A viewer session (login without url) may read but never acts for the peer.
        viewer INTEGER NOT NULL DEFAULT 0
      )`,
      'CREATE INDEX sessions_peer ON sessions (peer_id)',
      `CREATE TABLE login_failures (
        username TEXT PRIMARY KEY COLLATE NOCASE,
        failures INTEGER NOT NULL,
        locked_until INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL
      )`,
      `CREATE TABLE signing_keys (
        kid TEXT PRIMARY KEY,
        private_jwk TEXT NOT NULL,
        public_jwk TEXT NOT NULL,
        created_at INTEGER NOT NULL
      )`,
      `CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        peer_id INTEGER NOT NULL REFERENCES peers (id),
        sha256 TEXT NOT NULL,
        name TEXT NOT NULL,
        name_key TEXT NOT NULL,
        size INTEGER NOT NULL,
        chunk_size INTEGER NOT NULL,
        manifest TEXT NOT NULL,
        UNIQUE (peer_id, sha256)
      )`,
      // Covers counting distinct live contents without touching the table rows.
      'CREATE INDEX files_sha256 ON files (sha256, peer_id, size)',
      'CREATE INDEX files_name_key ON files (name_key)',
      "CREATE VIRTUAL TABLE files_fts USING fts5 (name_key, content = 'files', content_rowid = 'id', tokenize = 'trigram')",
      `CREATE TRIGGER files_fts_insert AFTER INSERT ON files BEGIN
        INSERT INTO files_fts (rowid, name_key) VALUES (new.id, new.name_key);
      END`,
      `CREATE TRIGGER files_fts_delete AFTER DELETE ON files BEGIN
        INSERT INTO files_fts (files_fts, rowid, name_key) VALUES ('delete', old.id, old.name_key);
      END`,
      `CREATE TRIGGER files_fts_update AFTER UPDATE OF name_key ON files BEGIN
        INSERT INTO files_fts (files_fts, rowid, name_key) VALUES ('delete', old.id, old.name_key);
        INSERT INTO files_fts (rowid, name_key) VALUES (new.id, new.name_key);
      END`,
    ],
  },
  {
    version: 2,
    name: 'search generation: bumped by every change to what a search can answer',
    statements: [
      // Cached search results are reused only while this number stays the same. Time passing
      // (leases running out) is not counted here: a cached result knows its holders' leases.
      'CREATE TABLE search_generation (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL)',
      'INSERT INTO search_generation (id, n) VALUES (1, 0)',
      `CREATE TRIGGER files_generation_insert AFTER INSERT ON files BEGIN
        UPDATE search_generation SET n = n + 1;
      END`,
      `CREATE TRIGGER files_generation_delete AFTER DELETE ON files BEGIN
        UPDATE search_generation SET n = n + 1;
      END`,
      `CREATE TRIGGER files_generation_update AFTER UPDATE ON files BEGIN
        UPDATE search_generation SET n = n + 1;
      END`,
      // A peer going down (logout), coming back after its lease ran out, or moving to another url
      // changes answers; renewing a running lease (the usual heartbeat) does not.
      `CREATE TRIGGER peers_generation AFTER UPDATE OF lease_expires_at, url ON peers
        WHEN new.lease_expires_at < old.lease_expires_at OR old.lease_expires_at <= new.last_seen
          OR new.url IS NOT old.url
      BEGIN
        UPDATE search_generation SET n = n + 1;
      END`,
    ],
  },
  {
    version: 3,
    name: 'login attempts by name and client address, reserved before the password is checked',
    statements: [
      // The old per-name counts are dropped: a name's lock-out no longer says anything per address.
      'DROP TABLE login_failures',
      `CREATE TABLE login_attempts (
        username TEXT NOT NULL COLLATE NOCASE,
        -- the client's address (IPv6 by /64), or '*': every address the name has not logged in from
        address TEXT NOT NULL,
        -- checks reserved in this round; a lock-out ends the round, a success resets it
        failures INTEGER NOT NULL DEFAULT 0,
        lockouts INTEGER NOT NULL DEFAULT 0,
        locked_until INTEGER NOT NULL DEFAULT 0,
        -- the name has logged in from this address
        known INTEGER NOT NULL DEFAULT 0,
        -- the last check admitted, so one write batch can tell whether it admitted this one
        attempt TEXT,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (username, address)
      )`,
    ],
  },
  {
    version: 4,
    name: 'an index past its file limit fails the write batch it is in',
    statements: [
      // A write that is refused by a statement of its own batch: D1 has no interactive transaction in
      // which the store could count and roll back. Inserting into the view writes nothing.
      'CREATE VIEW index_limit_checks AS SELECT 0 AS peer_id, 0 AS max_files',
      `CREATE TRIGGER index_limit_check INSTEAD OF INSERT ON index_limit_checks
        WHEN (SELECT file_count FROM peers WHERE id = new.peer_id) > new.max_files
      BEGIN
        SELECT raise(ABORT, '${INDEX_OVER_LIMIT}');
      END`,
    ],
  },
  {
    version: 5,
    name: 'index rows by generation: a replace is written in pieces under a pending one, then flipped live',
    statements: [
      // The generation of the account's rows that readers see; the last one handed out to a write;
      // when that was (a write still pending long after is taken for abandoned and swept).
      'ALTER TABLE peers ADD COLUMN index_generation INTEGER NOT NULL DEFAULT 0',
      'ALTER TABLE peers ADD COLUMN last_generation INTEGER NOT NULL DEFAULT 0',
      'ALTER TABLE peers ADD COLUMN generation_started_at INTEGER NOT NULL DEFAULT 0',
      // SQLite cannot change a UNIQUE constraint in place: the table is rebuilt, ids kept (the
      // trigram index is keyed by them, so it stays valid as it is).
      `CREATE TABLE files_next (
        id INTEGER PRIMARY KEY,
        peer_id INTEGER NOT NULL REFERENCES peers (id),
        sha256 TEXT NOT NULL,
        name TEXT NOT NULL,
        name_key TEXT NOT NULL,
        size INTEGER NOT NULL,
        chunk_size INTEGER NOT NULL,
        manifest TEXT NOT NULL,
        generation INTEGER NOT NULL DEFAULT 0,
        UNIQUE (peer_id, generation, sha256)
      )`,
      `INSERT INTO files_next (id, peer_id, sha256, name, name_key, size, chunk_size, manifest)
        SELECT id, peer_id, sha256, name, name_key, size, chunk_size, manifest FROM files`,
      'DROP TABLE files',
      'ALTER TABLE files_next RENAME TO files',
      'CREATE INDEX files_sha256 ON files (sha256, peer_id, generation, size)',
      'CREATE INDEX files_name_key ON files (name_key)',
      `CREATE TRIGGER files_fts_insert AFTER INSERT ON files BEGIN
        INSERT INTO files_fts (rowid, name_key) VALUES (new.id, new.name_key);
      END`,
      `CREATE TRIGGER files_fts_delete AFTER DELETE ON files BEGIN
        INSERT INTO files_fts (files_fts, rowid, name_key) VALUES ('delete', old.id, old.name_key);
      END`,
      `CREATE TRIGGER files_fts_update AFTER UPDATE OF name_key ON files BEGIN
        INSERT INTO files_fts (files_fts, rowid, name_key) VALUES ('delete', old.id, old.name_key);
        INSERT INTO files_fts (rowid, name_key) VALUES (new.id, new.name_key);
      END`,
      // Rows of a pending generation change no answer until the flip, which counts once.
      `CREATE TRIGGER files_generation_insert AFTER INSERT ON files
        WHEN new.generation = (SELECT index_generation FROM peers WHERE id = new.peer_id)
      BEGIN
        UPDATE search_generation SET n = n + 1;
      END`,
      `CREATE TRIGGER files_generation_delete AFTER DELETE ON files
        WHEN old.generation = (SELECT index_generation FROM peers WHERE id = old.peer_id)
      BEGIN
        UPDATE search_generation SET n = n + 1;
      END`,
      `CREATE TRIGGER files_generation_update AFTER UPDATE ON files
        WHEN new.generation = (SELECT index_generation FROM peers WHERE id = new.peer_id)
      BEGIN
        UPDATE search_generation SET n = n + 1;
      END`,
      `CREATE TRIGGER peers_index_generation AFTER UPDATE OF index_generation ON peers
        WHEN new.index_generation IS NOT old.index_generation
      BEGIN
        UPDATE search_generation SET n = n + 1;
      END`,
    ],
  },
  {
    version: 6,
    name: 'the holders of one variant found by one index walk',
    statements: [
      // A search's sources are the live holders of each variant it answers. By sha256 alone the walk
      // read every holder's row to compare its manifest: a popular content comes in many variants.
      'CREATE INDEX files_variant ON files (sha256, manifest, size, chunk_size, peer_id, generation)',
    ],
  },
  {
    version: 7,
    name: 'the exact and prefix stages of a name search read the name index only',
    statements: [
      // The stages rank a few hundred rows by what they hold; from name_key alone each was a table
      // row on a page of its own (most of a prefix search's page reads at 1M files).
      'CREATE INDEX files_name ON files (name_key, peer_id, generation, sha256, manifest, size, chunk_size, name)',
      'DROP INDEX files_name_key',
    ],
  },
  {
    version: 8,
    name: 'a heartbeat writes the peer row alone',
    statements: [
      // Every heartbeat moves its peer's lease, and with it this index's entry: a third of what a
      // renewal's commit wrote. What read it (a peer list filtered by state) reads the peers table
      // in name order instead, about a millisecond for 10,000 peers.
      'DROP INDEX peers_lease',
    ],
  },
  {
    version: 9,
    name: 'the network a peer last logged in from',
    statements: [
      // Variants of a content are ranked by the networks of their holders, not by their accounts
      // (free to make); see variantsByHash. Empty until the peer's next login.
      "ALTER TABLE peers ADD COLUMN network TEXT NOT NULL DEFAULT ''",
    ],
  },
  {
    version: 10,
    name: 'folders: each holder keeps a content at a path; search finds words in paths too; browse by folder',
    statements: [
      // One content may live at different paths for different holders: the path is the holder's row's.
      "ALTER TABLE files ADD COLUMN path TEXT NOT NULL DEFAULT ''",
      // Folded in JS like name_key (Unicode case), for the trigram index.
      "ALTER TABLE files ADD COLUMN path_key TEXT NOT NULL DEFAULT ''",
      // Words across path and name: a trigram index over both. The name stages keep files_fts, over
      // names alone: a column filter on this one walked every path holding the word (a folder word
      // in a fifth of the paths cost 20-60 ms for a name stage that found nothing).
      "CREATE VIRTUAL TABLE files_words_fts USING fts5 (name_key, path_key, content = 'files', content_rowid = 'id', tokenize = 'trigram')",
      "INSERT INTO files_words_fts (files_words_fts) VALUES ('rebuild')",
      `CREATE TRIGGER files_words_fts_insert AFTER INSERT ON files BEGIN
        INSERT INTO files_words_fts (rowid, name_key, path_key) VALUES (new.id, new.name_key, new.path_key);
      END`,
      `CREATE TRIGGER files_words_fts_delete AFTER DELETE ON files BEGIN
        INSERT INTO files_words_fts (files_words_fts, rowid, name_key, path_key)
          VALUES ('delete', old.id, old.name_key, old.path_key);
      END`,
      `CREATE TRIGGER files_words_fts_update AFTER UPDATE OF name_key, path_key ON files BEGIN
        INSERT INTO files_words_fts (files_words_fts, rowid, name_key, path_key)
          VALUES ('delete', old.id, old.name_key, old.path_key);
        INSERT INTO files_words_fts (rowid, name_key, path_key) VALUES (new.id, new.name_key, new.path_key);
      END`,
      // Browsing one peer's folder: its files by name, the folders below it with their counts and
      // bytes, recursive pages in (path, name) order; all from this index alone but the page's rows.
      'CREATE INDEX files_path ON files (peer_id, generation, path, name, size)',
      // The exact and prefix stages answer a holder's path too, still from the name index alone.
      'DROP INDEX files_name',
      'CREATE INDEX files_name ON files (name_key, peer_id, generation, sha256, manifest, size, chunk_size, name, path)',
    ],
  },
  {
    version: 11,
    name: 'network totals kept by the writes: distinct contents and bytes of the peers up',
    statements: [
      // Whether a peer's rows are counted in contents: it was up when last reconciled (see
      // reconcileCounted; a lease runs out without a write, so the stats read catches up on those).
      'ALTER TABLE peers ADD COLUMN counted INTEGER NOT NULL DEFAULT 0',
      // Per content (sha256): how many rows of counted peers hold it (any generation: a pending
      // write's new contents count from their piece, the old ones until swept), and its size as
      // first counted. A content is in the totals while its holders are more than none.
      `CREATE TABLE contents (
        sha256 TEXT PRIMARY KEY,
        holders INTEGER NOT NULL,
        size INTEGER NOT NULL
      ) WITHOUT ROWID`,
      'CREATE TABLE network_totals (id INTEGER PRIMARY KEY CHECK (id = 1), contents INTEGER NOT NULL, bytes INTEGER NOT NULL)',
      'INSERT INTO network_totals (id, contents, bytes) VALUES (1, 0, 0)',
      `CREATE TRIGGER files_count_insert AFTER INSERT ON files
        WHEN (SELECT counted FROM peers WHERE id = new.peer_id) = 1
      BEGIN
        UPDATE network_totals SET contents = contents + 1, bytes = bytes + new.size
          WHERE NOT EXISTS (SELECT 1 FROM contents WHERE sha256 = new.sha256);
        INSERT INTO contents (sha256, holders, size) VALUES (new.sha256, 1, new.size)
          ON CONFLICT (sha256) DO UPDATE SET holders = holders + 1;
      END`,
      `CREATE TRIGGER files_count_delete AFTER DELETE ON files
        WHEN (SELECT counted FROM peers WHERE id = old.peer_id) = 1
      BEGIN
        UPDATE contents SET holders = holders - 1 WHERE sha256 = old.sha256;
        UPDATE network_totals SET contents = contents - 1,
          bytes = bytes - (SELECT size FROM contents WHERE sha256 = old.sha256)
          WHERE (SELECT holders FROM contents WHERE sha256 = old.sha256) = 0;
        DELETE FROM contents WHERE sha256 = old.sha256 AND holders = 0;
      END`,
      // A peer counted from now: each of its rows holds its content once more.
      `CREATE TRIGGER peers_counted_up AFTER UPDATE OF counted ON peers
        WHEN new.counted = 1 AND old.counted = 0
      BEGIN
        UPDATE network_totals SET
          contents = contents + (SELECT count(*) FROM (SELECT DISTINCT sha256 FROM files f WHERE f.peer_id = new.id
            AND NOT EXISTS (SELECT 1 FROM contents c WHERE c.sha256 = f.sha256))),
          bytes = bytes + (SELECT coalesce(sum(size), 0) FROM (SELECT sha256, min(size) AS size FROM files f
            WHERE f.peer_id = new.id AND NOT EXISTS (SELECT 1 FROM contents c WHERE c.sha256 = f.sha256)
            GROUP BY sha256));
        INSERT INTO contents (sha256, holders, size)
          SELECT sha256, count(*), min(size) FROM files WHERE peer_id = new.id GROUP BY sha256
          ON CONFLICT (sha256) DO UPDATE SET holders = holders + excluded.holders;
      END`,
      `CREATE TRIGGER peers_counted_down AFTER UPDATE OF counted ON peers
        WHEN new.counted = 0 AND old.counted = 1
      BEGIN
        UPDATE contents SET holders = holders - (SELECT count(*) FROM files f
            WHERE f.peer_id = new.id AND f.sha256 = contents.sha256)
          WHERE sha256 IN (SELECT sha256 FROM files WHERE peer_id = new.id);
        UPDATE network_totals SET
          contents = contents - (SELECT count(*) FROM contents WHERE holders = 0),
          bytes = bytes - (SELECT coalesce(sum(size), 0) FROM contents WHERE holders = 0);
        DELETE FROM contents WHERE holders = 0;
      END`,
      // The contents a peer going down left without a holder: found without reading the others.
      'CREATE INDEX contents_unheld ON contents (holders) WHERE holders = 0',
    ],
  },
  {
    version: 12,
    name: 'publish sequence: which rows a search since a cursor answers',
    statements: [
      // Bumped by each write that makes rows live (see publish-sequence.ts); a search's cursor is it.
      'CREATE TABLE publish_sequence (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL)',
      'INSERT INTO publish_sequence (id, n) VALUES (1, 0)',
      // When a row went live with what it holds now; null: with its peer's last flipped generation,
      // whose number is index_published (a big write's rows are written before they go live).
      'ALTER TABLE files ADD COLUMN published INTEGER',
      'ALTER TABLE peers ADD COLUMN index_published INTEGER NOT NULL DEFAULT 0',
      'CREATE INDEX files_published ON files (published) WHERE published IS NOT NULL',
      'CREATE INDEX peers_index_published ON peers (index_published)',
    ],
  },
  {
    version: 13,
    name: 'peer keys: the TLS key each peer session logged in with, listed with its url',
    statements: [
      // The SPKI fingerprint a peer session logged in with (null: plaintext), and the one its peer is
      // listed with: that of the last peer login, as the url is.
      'ALTER TABLE sessions ADD COLUMN peer_key TEXT',
      'ALTER TABLE peers ADD COLUMN peer_key TEXT',
      // A peer that comes back with another key changes what a search answers, as another url does.
      `CREATE TRIGGER peers_key_generation AFTER UPDATE OF peer_key ON peers
        WHEN new.peer_key IS NOT old.peer_key
      BEGIN
        UPDATE search_generation SET n = n + 1;
      END`,
    ],
  },
]

export async function migrate(db: Database): Promise<void> {
  await db.execute(
    'CREATE TABLE IF NOT EXISTS _migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
  )
  const applied = await db.execute('SELECT version FROM _migrations')
  const done = new Set(applied.rows.map((row) => Number(row.version)))
  for (const migration of migrations) {
    if (done.has(migration.version)) continue
    try {
      await db.batch(
        [
          ...migration.statements,
          {
            sql: 'INSERT INTO _migrations (version, name, applied_at) VALUES (?, ?, ?)',
            args: [migration.version, migration.name, Date.now()],
          },
        ],
        'write',
      )
    } catch (err) {
      // Another process (or Worker isolate) may have applied it first; that is success.
      const again = await db.execute({
        sql: 'SELECT 1 FROM _migrations WHERE version = ?',
        args: [migration.version],
      })
      if (again.rows.length === 0) throw err
    }
  }
}
