import { afterEach, expect, it } from 'vitest'
import { networkStats } from '../../directory-worker/src/store/peers.ts'
import {
  createTestDirectory,
  fileEntry,
  login,
  publish,
  type TestDirectory,
} from '../support/directory-app.ts'

let directory: TestDirectory | undefined
afterEach(() => directory?.close())

const ADMIN_TOKEN = 'the operator admin secret'

/** What /v1/stats counted before the totals were kept: every live row, read whole. */
async function countedFromRows(d: TestDirectory) {
  const result = await d.db.execute({
    sql: `SELECT count(*) AS uniqueFiles, coalesce(sum(size), 0) AS bytes FROM (
            SELECT f.sha256, max(f.size) AS size FROM files f
              JOIN peers p ON p.id = f.peer_id AND f.generation = p.index_generation
            WHERE p.lease_expires_at > ? GROUP BY f.sha256)`,
    args: [d.clock.now],
  })
  return { uniqueFiles: Number(result.rows[0]?.uniqueFiles), bytes: Number(result.rows[0]?.bytes) }
}

/** The totals as a stats read sees them (not reused from an earlier read), and what the rows say. */
async function statsAndRows(d: TestDirectory) {
  d.clock.advance(1)
  const stats = await networkStats(d.db, d.clock.now)
  return { stats: { uniqueFiles: stats.uniqueFiles, bytes: stats.bytes }, rows: await countedFromRows(d) }
}

it('the stats’ contents and bytes, kept by the writes, are what the live rows hold after every kind of change', async () => {
  const d = createTestDirectory({ ADMIN_TOKEN, MAX_FILES_PER_PEER: '20000' })
  directory = d
  const expectAgree = async (step: string, expected?: { uniqueFiles: number; bytes: number }) => {
    const { stats, rows } = await statsAndRows(d)
    expect(stats, step).toEqual(rows)
    if (expected) expect(stats, step).toEqual(expected)
  }
  const shared = fileEntry('shared.flac', 'shared', 100)
  const alice = await login(d, 'alice')
  const bob = await login(d, 'bob', { url: 'http://127.0.0.1:50052' })
  await publish(d, alice, [shared, fileEntry('a.txt', 'a', 10)])
  await publish(d, bob, [{ ...shared, name: 'same content.flac' }, fileEntry('b.txt', 'b', 1)])
  await expectAgree('two peers, one content shared', { uniqueFiles: 3, bytes: 111 })

  // A moved file (remove and add of one sha256 with a new path) and a removed one.
  const patch = await d.request('/v1/index', {
    method: 'PATCH',
    token: alice,
    json: {
      remove: [shared.sha256, fileEntry('a.txt', 'a', 10).sha256],
      add: [{ ...shared, path: 'Moved/Here' }],
    },
  })
  expect(patch.status).toBe(200)
  await expectAgree('a move and a removal', { uniqueFiles: 2, bytes: 101 })

  expect((await d.request('/v1/logout', { method: 'POST', token: bob })).status).toBe(200)
  await expectAgree('a logout', { uniqueFiles: 1, bytes: 100 })

  // A lease that runs out writes nothing; the next read still leaves it out.
  d.clock.advance(120)
  await expectAgree('a lease run out', { uniqueFiles: 0, bytes: 0 })
  const back = await login(d, 'alice')
  await expectAgree('back up', { uniqueFiles: 1, bytes: 100 })

  // Writes in pieces under a pending generation, flipped live, the old rows swept.
  const many = Array.from({ length: 6000 }, (_, i) => fileEntry(`track ${i}.flac`, `many ${i}`, i))
  await publish(d, back, many)
  await expectAgree('a replace in pieces')
  const bigPatch = await d.request('/v1/index', {
    method: 'PATCH',
    token: back,
    json: { remove: many.slice(0, 3000).map((f) => f.sha256), add: [shared] },
  })
  expect(bigPatch.status).toBe(200)
  await expectAgree('a patch in pieces')
  expect((await statsAndRows(d)).stats.uniqueFiles).toBe(3001)

  const removed = await d.request('/v1/admin/users/alice', {
    method: 'DELETE',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  })
  expect(removed.status).toBe(200)
  await expectAgree('an account removed', { uniqueFiles: 0, bytes: 0 })
  // And through the API, as the dashboard reads them.
  expect(await (await d.request('/v1/stats')).json()).toMatchObject({ uniqueFiles: 0, bytes: 0 })
})
