import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from '@libsql/client/web'
import Database from 'libsql'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type HranaServer, startHranaServer } from '../support/hrana-server.ts'

const TOKEN = 'secret-token'
let server: HranaServer
let dbPath: string
beforeAll(async () => {
  dbPath = join(mkdtempSync(join(tmpdir(), 'peerdir-hrana-')), 'remote.db')
  server = await startHranaServer({ path: dbPath, authToken: TOKEN })
})
afterAll(() => server.close())

const client = (intMode: 'number' | 'bigint' = 'number') =>
  createClient({ url: server.url, authToken: TOKEN, intMode })

/** One raw Hrana request, for what the client never sends on its own. */
async function post(path: string, body: unknown) {
  const response = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  return { status: response.status, text: await response.text() }
}
const pipeline = async (baton: string | null, requests: unknown[]) => {
  const { status, text } = await post('/v3/pipeline', { baton, requests })
  expect(status).toBe(200)
  // Raw protocol JSON, read only by the assertions below: any keeps them short.
  // biome-ignore lint/suspicious/noExplicitAny: see above
  type Loose = any
  return JSON.parse(text) as {
    baton: string | null
    results: { type: string; response?: Loose; error?: Loose }[]
  }
}
const sql = (text: string, args: unknown[] = []) => ({ type: 'execute', stmt: { sql: text, args } })

describe('the Hrana-over-HTTP stand-in speaks what @libsql/client/web sends', () => {
  it('executes statements with arguments, typed values, and big integers', async () => {
    const db = client()
    await db.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n INTEGER, x REAL, b BLOB)')
    const insert = await db.execute({
      sql: 'INSERT INTO t (name, n, x, b) VALUES (?, ?, ?, ?)',
      args: ['héllo', 9007199254740993n, 1.5, new Uint8Array([1, 2, 3])],
    })
    expect(insert.rowsAffected).toBe(1)
    expect(insert.lastInsertRowid).toBe(1n)
    const result = await db.execute({
      sql: 'SELECT name, x, b FROM t WHERE name = :name',
      args: { name: 'héllo' },
    })
    expect(result.columns).toEqual(['name', 'x', 'b'])
    expect(result.columnTypes).toEqual(['TEXT', 'REAL', 'BLOB'])
    expect(result.rows[0]?.name).toBe('héllo')
    expect(result.rows[0]?.x).toBe(1.5)
    expect([...new Uint8Array(result.rows[0]?.b as ArrayBuffer)]).toEqual([1, 2, 3])
    const big = client('bigint')
    expect((await big.execute('SELECT n FROM t')).rows[0]?.n).toBe(9007199254740993n)
    // A REAL with no fractional part stays a float; an INTEGER stays an integer.
    const kinds = await big.execute('SELECT 2.0 AS f, 2 AS i, typeof(?) AS t', [2.0])
    expect(kinds.rows[0]).toMatchObject({ f: 2, i: 2n, t: 'real' })
    const rowid = await db.execute('INSERT INTO t (id, name) VALUES (9007199254740993, ?)', ['far'])
    expect(rowid.lastInsertRowid).toBe(9007199254740993n)
  })

  it('binds a lone null or blob argument, and mixed positional and named arguments', async () => {
    const db = client()
    expect((await db.execute('SELECT ? IS NULL AS n', [null])).rows[0]?.n).toBe(1)
    expect((await db.execute('SELECT length(?) AS n', [new Uint8Array(5)])).rows[0]?.n).toBe(5)
    const mixed = await post('/v2/pipeline', {
      baton: null,
      requests: [
        {
          type: 'execute',
          stmt: {
            sql: 'SELECT ?1 AS a, :b AS b',
            args: [{ type: 'text', value: 'first' }],
            named_args: [{ name: ':b', value: { type: 'integer', value: '7' } }],
          },
        },
        { type: 'close' },
      ],
    })
    expect(JSON.parse(mixed.text).results[0].response.result.rows).toEqual([
      [
        { type: 'text', value: 'first' },
        { type: 'integer', value: '7' },
      ],
    ])
  })

  it('counts rows written by INSERT ... RETURNING and runs several statements with executeMultiple', async () => {
    const db = client()
    await db.executeMultiple('CREATE TABLE r (id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX r_v ON r (v);')
    const returned = await db.execute("INSERT INTO r (v) VALUES ('a'), ('b') RETURNING id")
    expect(returned.rows.map((row) => row.id)).toEqual([1, 2])
    expect(returned.rowsAffected).toBe(2)
    expect((await db.execute('SELECT * FROM r')).rowsAffected).toBe(0)
  })

  it('runs a write batch atomically: a failing statement rolls the batch back', async () => {
    const db = client()
    await db.execute('CREATE TABLE u (k TEXT PRIMARY KEY)')
    await expect(
      db.batch(["INSERT INTO u VALUES ('a')", "INSERT INTO u VALUES ('a')"], 'write'),
    ).rejects.toThrow(/UNIQUE/)
    expect((await db.execute('SELECT count(*) AS n FROM u')).rows[0]?.n).toBe(0)
    const results = await db.batch(["INSERT INTO u VALUES ('a')", "INSERT INTO u VALUES ('b')"], 'write')
    expect(results.map((r) => r.rowsAffected)).toEqual([1, 1])
    expect((await db.execute('SELECT count(*) AS n FROM u')).rows[0]?.n).toBe(2)
  })

  it('holds an interactive transaction across requests, isolated until commit, and rolls back', async () => {
    const db = client()
    await db.execute('CREATE TABLE v (k TEXT)')
    const tx = await db.transaction('write')
    await tx.execute("INSERT INTO v VALUES ('pending')")
    expect((await tx.execute('SELECT count(*) AS n FROM v')).rows[0]?.n).toBe(1)
    // Another stream waits for the transaction instead of seeing its rows or failing with SQLITE_BUSY.
    let otherDone = false
    const other = client()
      .execute("INSERT INTO v VALUES ('after')")
      .then(() => {
        otherDone = true
      })
    await tx.execute('SELECT 1')
    expect(otherDone).toBe(false)
    await tx.commit()
    await other
    expect((await db.execute('SELECT k FROM v ORDER BY rowid')).rows.map((r) => r.k)).toEqual([
      'pending',
      'after',
    ])
    const undo = await db.transaction('write')
    await undo.execute("INSERT INTO v VALUES ('undone')")
    await undo.rollback()
    expect((await db.execute('SELECT count(*) AS n FROM v')).rows[0]?.n).toBe(2)
  })

  it('gives several waiting transactions their turns one at a time', async () => {
    const db = client()
    await db.execute('CREATE TABLE w (k INTEGER)')
    const first = await db.transaction('write')
    await first.execute('INSERT INTO w VALUES (0)')
    const others = [1, 2, 3].map(async (k) => {
      const tx = await client().transaction('write')
      await tx.execute({ sql: 'INSERT INTO w VALUES (?)', args: [k] })
      await tx.execute('SELECT count(*) FROM w')
      await tx.commit()
    })
    await first.commit()
    await Promise.all(others)
    expect((await db.execute('SELECT count(*) AS n FROM w')).rows[0]?.n).toBe(4)
  })

  it('has FTS5 with the trigram tokenizer and json_each, as the directory needs', async () => {
    const db = client()
    await db.execute("CREATE VIRTUAL TABLE f USING fts5 (name, tokenize = 'trigram')")
    await db.execute({
      sql: 'INSERT INTO f (name) SELECT value FROM json_each(?)',
      args: [JSON.stringify(['Song.mp3', 'other.txt'])],
    })
    const found = await db.execute(`SELECT name FROM f WHERE f MATCH '"song"'`)
    expect(found.rows.map((r) => r.name)).toEqual(['Song.mp3'])
  })

  it('refuses a wrong auth token with 401', async () => {
    const db = createClient({ url: server.url, authToken: 'wrong' })
    await expect(db.execute('SELECT 1')).rejects.toThrow(/401.*auth token|auth token/i)
    const probe = await fetch(`${server.url}/v3`)
    expect(probe.status).toBe(401)
  })

  it('keeps the data in the real libSQL file', () => {
    const file = new Database(dbPath, { readonly: true })
    try {
      expect(file.prepare('SELECT k FROM u ORDER BY k').all()).toEqual([{ k: 'a' }, { k: 'b' }])
    } finally {
      file.close()
    }
  })
})

describe('the Hrana 3 requests the client sends only in some modes', () => {
  it('stores SQL texts per stream, describes, and reports autocommit across batons', async () => {
    const first = await pipeline(null, [
      { type: 'store_sql', sql_id: 1, sql: 'SELECT ? + 1 AS n' },
      { type: 'execute', stmt: { sql_id: 1, args: [{ type: 'integer', value: '41' }] } },
      { type: 'store_sql', sql_id: 1, sql: 'SELECT 2' },
      { type: 'describe', sql: 'SELECT k FROM u' },
      sql('BEGIN'),
      { type: 'get_autocommit' },
    ])
    expect(first.results.map((r) => r.type)).toEqual(['ok', 'ok', 'error', 'ok', 'ok', 'ok'])
    expect(first.results[1]?.response.result.rows).toEqual([[{ type: 'integer', value: '42' }]])
    expect(first.results[3]?.response.result).toMatchObject({
      cols: [{ name: 'k', decltype: 'TEXT' }],
      is_readonly: true,
    })
    expect(first.results[5]?.response.is_autocommit).toBe(false)
    const second = await pipeline(first.baton, [
      { type: 'execute', stmt: { sql_id: 1, args: [{ type: 'integer', value: '1' }] } },
      { type: 'close_sql', sql_id: 1 },
      { type: 'execute', stmt: { sql_id: 1 } },
      sql('ROLLBACK'),
      { type: 'get_autocommit' },
      { type: 'close' },
      sql('SELECT 1'),
    ])
    expect(second.baton).toBeNull()
    expect(second.baton).not.toBe(first.baton)
    expect(second.results.map((r) => r.type)).toEqual(['ok', 'ok', 'error', 'ok', 'ok', 'ok', 'error'])
    expect(second.results[2]?.error.code).toBe('SQL_NOT_FOUND')
    expect(second.results[4]?.response.is_autocommit).toBe(true)
    // A used or unknown baton is refused; SQL texts do not leak between streams.
    expect((await post('/v3/pipeline', { baton: first.baton, requests: [] })).status).toBe(400)
    const fresh = await pipeline(null, [{ type: 'execute', stmt: { sql_id: 1 } }, { type: 'close' }])
    expect(fresh.results[0]?.type).toBe('error')
  })

  it('evaluates batch conditions: ok, error, not, and, or, is_autocommit', async () => {
    const { results } = await pipeline(null, [
      {
        type: 'batch',
        batch: {
          steps: [
            { stmt: { sql: 'SELECT 1' } },
            { stmt: { sql: 'SELECT nope FROM nowhere' } },
            { condition: { type: 'error', step: 1 }, stmt: { sql: "SELECT 'ran'" } },
            { condition: { type: 'ok', step: 1 }, stmt: { sql: "SELECT 'skipped'" } },
            {
              condition: {
                type: 'and',
                conds: [
                  { type: 'ok', step: 0 },
                  { type: 'not', cond: { type: 'ok', step: 3 } },
                ],
              },
              stmt: { sql: "SELECT 'ran'" },
            },
            {
              condition: { type: 'or', conds: [{ type: 'error', step: 0 }, { type: 'is_autocommit' }] },
              stmt: { sql: "SELECT 'ran'" },
            },
          ],
        },
      },
      { type: 'close' },
    ])
    const batch = results[0]?.response.result
    expect(batch.step_results.map((r: unknown) => r !== null)).toEqual([true, false, true, false, true, true])
    expect(batch.step_errors.map((e: unknown) => e !== null)).toEqual([
      false,
      true,
      false,
      false,
      false,
      false,
    ])
    expect(batch.step_errors[1].message).toMatch(/no such table/)
  })

  it('streams a batch through /v3/cursor as lines of entries', async () => {
    const { status, text } = await post('/v3/cursor', {
      baton: null,
      batch: {
        steps: [
          { stmt: { sql: "SELECT k FROM u WHERE k = 'zzz'" } },
          { stmt: { sql: 'SELECT k FROM u ORDER BY k' } },
          { stmt: { sql: 'SELECT nope' } },
          { condition: { type: 'ok', step: 2 }, stmt: { sql: 'SELECT 1' } },
        ],
      },
    })
    expect(status).toBe(200)
    const [head, ...entries] = text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
    expect(head.baton).toEqual(expect.any(String))
    expect(entries.map((e) => e.type)).toEqual([
      'step_begin',
      'step_end',
      'step_begin',
      'row',
      'row',
      'step_end',
      'step_error',
    ])
    expect(entries[3].row).toEqual([{ type: 'text', value: 'a' }])
    expect((await pipeline(head.baton, [{ type: 'close' }])).baton).toBeNull()
  })

  it('answers version probes and unknown endpoints as the client expects', async () => {
    const get = (path: string) =>
      fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } })
    expect((await get('/v2')).status).toBe(200)
    expect((await get('/v3')).status).toBe(200)
    const protobuf = await get('/v3-protobuf')
    expect(protobuf.status).toBe(404)
    expect(await protobuf.json()).toMatchObject({ message: expect.any(String) })
    expect((await post('/v3/pipeline', { baton: null })).status).toBe(400)
  })
})
