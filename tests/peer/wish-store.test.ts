import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { WISHES_VERSION, WishError, WishStore } from '../../peer/src/daemon/wish-store.ts'

describe('WishStore', () => {
  it('keeps wishes and their matches across a restart, a fetch cut short waiting to start again', () => {
    const dir = mkdtempSync(join(tmpdir(), 'peerdir-wishes-'))
    const store = new WishStore(dir)
    const wish = store.add({ query: 'nightjar', get: true, minSize: 10 })
    wish.cursor = 'cDQy'
    store.addMatch(wish, {
      name: 'a.flac',
      path: '',
      sha256: 'ab'.repeat(32),
      size: 20,
      foundAt: 'then',
      fetch: 'fetching',
    })
    store.addMatch(wish, {
      name: 'b.flac',
      path: 'x',
      sha256: 'cd'.repeat(32),
      size: 30,
      foundAt: 'then',
      fetch: 'fetched',
    })
    store.save()
    // Written whole and renamed: no temporary file is left beside it.
    expect(readdirSync(dir)).toEqual(['wishes.json'])
    expect(JSON.parse(readFileSync(join(dir, 'wishes.json'), 'utf8')).version).toBe(WISHES_VERSION)
    const again = new WishStore(dir)
    expect(again.all).toMatchObject([
      { id: wish.id, query: 'nightjar', get: true, minSize: 10, cursor: 'cDQy' },
    ])
    expect(again.get(wish.id)?.matches.map((m) => m.fetch)).toEqual(['pending', 'fetched'])
    expect(again.remove(wish.id)).toBe(true)
    expect(new WishStore(dir).all).toEqual([])
  })

  it('leaves a file of a newer format alone, and says so', () => {
    const dir = mkdtempSync(join(tmpdir(), 'peerdir-wishes-'))
    const newer = `${JSON.stringify({ version: WISHES_VERSION + 1, wishes: [{ id: 'x', shape: 'unknown' }] })}\n`
    writeFileSync(join(dir, 'wishes.json'), newer)
    const store = new WishStore(dir)
    expect(store.unreadable).toMatch(/newer format/)
    expect(() => store.add({ query: 'kestrel', get: false })).toThrow(WishError)
    store.save()
    expect(readFileSync(join(dir, 'wishes.json'), 'utf8')).toBe(newer)
  })
})
