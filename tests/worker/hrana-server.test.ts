import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from '@libsql/client/web'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type HranaServer, startHranaServer } from '../support/hrana-server.ts'

let server: HranaServer
let dbPath: string
beforeAll(async () => {
  dbPath = join(mkdtempSync(join(tmpdir(), 'peerdir-hrana-')), 'remote.db')
  server = await startHranaServer({ path: dbPath, authToken: 'secret-token' })
})
afterAll(() => server.close())

const client = () => createClient({ url: server.url, authToken: 'secret-token' })

describe('the Hrana-over-HTTP stand-in speaks what @libsql/client/web sends', () => {
  it('executes statements with arguments, typed values, and big integers', async () => {
    const db = client()
    await db.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n INTEGER, x REAL, b BLOB)')
    const insert = await db.execute({
      sql: 'INSERT INTO t (name, n, x, b) VALUES (?, ?, ?, ?)',
      args: ['héllo', 9007199254740993n, 1.5, new Uint8Array([1, 2, 3])],
    })
    expect(insert.rowsAffected).toBe(1)
    expect(Number(insert.lastInsertRowid)).toBe(1)
    const result = await db.execute({
      sql: 'SELECT name, x, b FROM t WHERE name = :name',
      args: { name: 'héllo' },
    })
    expect(result.columns).toEqual(['name', 'x', 'b'])
    expect(result.rows[0]?.name).toBe('héllo')
    expect(result.rows[0]?.x).toBe(1.5)
    expect([...new Uint8Array(result.rows[0]?.b as ArrayBuffer)]).toEqual([1, 2, 3])
    const big = createClient({ url: server.url, authToken: 'secret-token', intMode: 'bigint' })
    expect((await big.execute('SELECT n FROM t')).rows[0]?.n).toBe(9007199254740993n)
  })

  it('runs a write batch atomically: a failing statement rolls the batch back', async () => {
    const db = client()
    await db.execute('CREATE TABLE u (k TEXT PRIMARY KEY)')
    await expect(
      db.batch(["INSERT INTO u VALUES ('a')", "INSERT INTO u VALUES ('a')"], 'write'),
    ).rejects.toThrow(/UNIQUE/)
    expect((await db.execute('SELECT count(*) AS n FROM u')).rows[0]?.n).toBe(0)
    await db.batch(["INSERT INTO u VALUES ('a')", "INSERT INTO u VALUES ('b')"], 'write')
    expect((await db.execute('SELECT count(*) AS n FROM u')).rows[0]?.n).toBe(2)
  })

  it('holds an interactive transaction across requests, isolated until commit, and rolls back', async () => {
    const db = client()
    await db.execute('CREATE TABLE v (k TEXT)')
    const tx = await db.transaction('write')
    await tx.execute("INSERT INTO v VALUES ('pending')")
    expect((await tx.execute('SELECT count(*) AS n FROM v')).rows[0]?.n).toBe(1)
    await tx.commit()
    expect((await db.execute('SELECT count(*) AS n FROM v')).rows[0]?.n).toBe(1)
    const undo = await db.transaction('write')
    await undo.execute("INSERT INTO v VALUES ('undone')")
    await undo.rollback()
    expect((await db.execute('SELECT count(*) AS n FROM v')).rows[0]?.n).toBe(1)
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

  it('refuses a wrong auth token', async () => {
    const db = createClient({ url: server.url, authToken: 'wrong' })
    await expect(db.execute('SELECT 1')).rejects.toThrow()
  })

  it('keeps the data in the real libSQL file', async () => {
    const { default: Database } = await import('libsql')
    const file = new Database(dbPath)
    expect(file.prepare('SELECT k FROM u ORDER BY k').all()).toEqual([{ k: 'a' }, { k: 'b' }])
    file.close()
  })
})
