// The index replace in pieces (tests/directory/index-generations.test.ts on a local file) on the two
// other backends: libSQL over Hrana HTTP (the Turso path) and local D1. Between its pieces another
// write goes through and a search sees the old index whole; a write failing midway leaves no rows; the
// same index again writes nothing.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { InStatement } from '@libsql/client'
import { createClient } from '@libsql/client/web'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Database } from '../../directory-worker/src/store/database.ts'
import { replaceIndex } from '../../directory-worker/src/store/index-replace.ts'
import { migrate } from '../../directory-worker/src/store/migrations.ts'
import { searchByName } from '../../directory-worker/src/store/name-search.ts'
import { registerPeer } from '../../directory-worker/src/store/peers.ts'
import { fileEntry } from '../support/directory-app.ts'
import { startHranaServer } from '../support/hrana-server.ts'
import { openLocalD1 } from '../support/local-d1.ts'

const oldIndex = Array.from({ length: 30 }, (_, i) => fileEntry(`old-${i}.flac`))
const newIndex = Array.from({ length: 12_000 }, (_, i) => fileEntry(`new-${i}.flac`))

type Backend = { db: Database; close: () => Promise<void> }
const backends: Record<string, () => Promise<Backend>> = {
  'libSQL over Hrana HTTP': async () => {
    const hrana = await startHranaServer({
      path: join(mkdtempSync(join(tmpdir(), 'peerdir-pieces-')), 'remote.db'),
      authToken: 't',
    })
    const client = createClient({ url: hrana.url, authToken: 't' })
    return {
      db: client,
      close: async () => {
        client.close()
        await hrana.close()
      },
    }
  },
  'local D1': openLocalD1,
}

describe.each(Object.keys(backends))('an index replace in pieces on %s', (name) => {
  let backend: Backend
  let piece: (n: number) => Promise<void> = async () => {}
  let pieces = 0
  // The store's statements pass here first: a piece is an insert under a pending generation.
  const gated = (db: Database): Database => {
    const gate = async (statement: InStatement) => {
      if (typeof statement === 'string') return
      if (statement.sql.includes('SET last_generation')) pieces = 0
      const args = Array.isArray(statement.args) ? statement.args : []
      if (statement.sql.includes('INSERT INTO files') && typeof args[2] === 'number') await piece(++pieces)
    }
    return {
      execute: async (statement) => {
        await gate(statement)
        return db.execute(statement)
      },
      batch: async (statements, mode) => {
        for (const statement of statements) await gate(statement)
        return db.batch(statements, mode)
      },
    }
  }
  beforeAll(async () => {
    backend = await (backends[name] as () => Promise<Backend>)()
    await migrate(backend.db)
  }, 60_000)
  afterAll(() => backend?.close())

  const rows = async (peerId: number) =>
    Number(
      (await backend.db.execute({ sql: 'SELECT count(*) AS n FROM files WHERE peer_id = ?', args: [peerId] }))
        .rows[0]?.n,
    )
  const names = async (text: string) =>
    (await searchByName(backend.db, text, Date.now(), 5)).contents.map((content) => content.name)

  it('lets another write through, shows the old index whole meanwhile, and keeps it when failing midway', {
    timeout: 120_000,
  }, async () => {
    const db = gated(backend.db)
    const peer = await registerPeer(db, {
      username: 'ann',
      passwordHash: 'x',
      url: 'http://127.0.0.1:1',
      now: 1,
    })
    const renew = () =>
      backend.db.execute({
        sql: 'UPDATE peers SET lease_expires_at = ? WHERE id = ?',
        args: [Date.now() + 600_000, peer.id],
      })
    await renew()
    expect(await replaceIndex(db, peer.id, oldIndex)).toBe(oldIndex.length)

    const events: string[] = []
    piece = async (n) => {
      expect(await names('old-7.flac')).toEqual(['old-7.flac'])
      expect(await names('new-1.flac')).toEqual([])
      if (n === 2) {
        await renew()
        events.push('lease renewed')
      }
    }
    expect(await replaceIndex(db, peer.id, newIndex)).toBe(newIndex.length)
    events.push('replaced')
    expect(events).toEqual(['lease renewed', 'replaced'])
    expect(pieces).toBeGreaterThanOrEqual(3)
    expect(await names('new-1.flac')).toEqual(['new-1.flac'])
    expect(await names('old-7.flac')).toEqual([])
    expect(await rows(peer.id)).toBe(newIndex.length)

    piece = async (n) => {
      if (n === 3) throw new Error('storage failed')
    }
    await expect(replaceIndex(db, peer.id, oldIndex.concat(newIndex.slice(0, 10_000)))).rejects.toThrow(
      'storage failed',
    )
    expect(await rows(peer.id)).toBe(newIndex.length)
    expect(await names('new-7500.flac')).toEqual(['new-7500.flac'])
    expect(await names('old-7.flac')).toEqual([])

    // The same index again (as every login publishes it) is checked, not written.
    pieces = 0
    piece = async () => {}
    expect(await replaceIndex(db, peer.id, newIndex)).toBe(newIndex.length)
    expect(pieces).toBe(0)
    const renamed = newIndex.map((file, i) => (i === 11_999 ? { ...file, name: 'renamed.flac' } : file))
    expect(await replaceIndex(db, peer.id, renamed)).toBe(newIndex.length)
    expect(pieces).toBeGreaterThanOrEqual(3)
    expect(await names('renamed.flac')).toEqual(['renamed.flac'])
    expect(await rows(peer.id)).toBe(newIndex.length)
  })
})
