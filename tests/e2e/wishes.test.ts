import { spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { nodeBin } from '../support/directory-process.ts'
import { subscribedFollower } from '../support/event-follower.ts'
import { startLyingPeer } from '../support/lying-peer.ts'
import { type PeerProcess, peerBin, placeFile, until } from '../support/peer-process.ts'
import { useTestNetwork } from '../support/test-network.ts'

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')
/** Wishes run every 200 ms here instead of about every minute. */
const env = { PEERDIR_WISH_INTERVAL_MS: '200' }

const network = useTestNetwork({ directoryEnv: { LEASE_SECONDS: '30' }, logOutAfterEach: true })

type ListedWish = {
  id: string
  query: string
  get: boolean
  lastRunAt: string | null
  matches: { name: string; sha256: string; fetch: string | null }[]
}

async function wishes(peer: PeerProcess): Promise<ListedWish[]> {
  const listed = await peer.cli(['wish', 'list', '--json'])
  if (listed.code !== 0) throw new Error(`peer wish list: ${listed.stderr}`)
  return JSON.parse(listed.stdout).wishes
}

/** Waits until every wish of `peer` has run `runs` more times from now (each run sets a later lastRunAt). */
async function runsPass(peer: PeerProcess, runs = 2) {
  for (let i = 0; i < runs; i++) {
    const before = new Date().toISOString()
    await until(
      async () => (await wishes(peer)).every((w) => w.lastRunAt !== null && w.lastRunAt > before),
      'the wishes to run again',
    )
  }
}

describe('peer wish', () => {
  it('fetches a match published after the wish, once and verified, and not again after a restart', async () => {
    const older = randomBytes(200_000)
    const later = randomBytes(300_000)
    const other = randomBytes(100_000)
    const alice = await network.peer('wish-alice')
    placeFile(alice.dir, 'nightjar older.flac', older)
    await alice.waitFor(/published changes: \+1/)
    let bob = await network.peer('wish-bob', { env })
    const events = await subscribedFollower(bob, network.stateRoot)

    const added = await bob.cli(['wish', 'add', 'nightjar', '--get', '--json'])
    expect(added.code, added.stderr).toBe(0)
    const wish = JSON.parse(added.stdout)
    expect(wish).toMatchObject({ query: 'nightjar', get: true })

    // After the wish: a match and a file that does not match.
    placeFile(alice.dir, 'unrelated.bin', other)
    placeFile(alice.dir, 'nightjar later.flac', later)

    const matched = await events.waitFor((e) => e.type === 'wish-matched', 'wish-matched')
    expect(matched).toMatchObject({
      wishId: wish.id,
      query: 'nightjar',
      name: 'nightjar later.flac',
      sha256: sha(later),
    })
    const fetched = join(bob.dir, 'nightjar later.flac')
    await until(
      async () => (await wishes(bob))[0]?.matches[0]?.fetch === 'fetched',
      'the match to be fetched',
    )
    expect(sha(readFileSync(fetched))).toBe(sha(later))
    await runsPass(bob)
    // Exactly the match, once: the older match and the non-match stay where they are.
    expect(readdirSync(bob.dir).filter((n) => !n.startsWith('.'))).toEqual(['nightjar later.flac'])
    expect(events.events().filter((e) => e.type === 'download-started')).toHaveLength(1)
    expect(events.events().filter((e) => e.type === 'wish-matched')).toHaveLength(1)
    expect(await events.interrupt()).toBe(0)

    // Restarted, with its copy gone, while a new holder publishes the same content: still not again.
    expect(await bob.stop('SIGTERM')).toBe(0)
    rmSync(fetched)
    bob = await network.peer('wish-bob', { env, port: bob.port, dir: bob.dir })
    const after = await subscribedFollower(bob, network.stateRoot)
    const carol = await network.peer('wish-carol')
    placeFile(carol.dir, 'nightjar later.flac', later)
    await carol.waitFor(/published changes: \+1/)
    await runsPass(bob)
    const [kept] = await wishes(bob)
    expect(kept).toMatchObject({ id: wish.id, query: 'nightjar', get: true })
    expect(kept?.matches.map((m) => [m.sha256, m.fetch])).toEqual([[sha(later), 'fetched']])
    expect(existsSync(fetched)).toBe(false)
    expect(after.events().filter((e) => e.type.startsWith('download-') || e.type === 'wish-matched')).toEqual(
      [],
    )
    expect(await after.interrupt()).toBe(0)

    expect((await bob.cli(['wish', 'remove', wish.id])).code).toBe(0)
    expect(await wishes(bob)).toEqual([])
  })
  it('can be made from the menu', async () => {
    const bob = await network.peer('wish-menu', { env })
    const run = spawnSync(nodeBin, [peerBin, 'menu', '--port', String(bob.port)], {
      input: '5\nharrow lane\ny\n\n',
      env: { ...process.env, PEERDIR_STATE_DIR: network.stateRoot },
      encoding: 'utf8',
    })
    expect(run.status, run.stderr).toBe(0)
    expect(run.stdout).toMatch(/Wish [0-9a-f]{8} saved: new matches are fetched/)
    expect(await wishes(bob)).toMatchObject([{ query: 'harrow lane', get: true }])
  })
  it('tries a failed fetch again later, and gets it once an honest holder has it', async () => {
    const content = randomBytes(1024 * 1024)
    const bob = await network.peer('wish-eve', { env })
    const events = await subscribedFollower(bob, network.stateRoot)
    const added = await bob.cli(['wish', 'add', 'harrier', '--get', '--json'])
    expect(added.code, added.stderr).toBe(0)
    // The only holder at first sends false bytes: the fetch fails, and is tried again later.
    const liar = await startLyingPeer({
      directoryUrl: network.directoryUrl,
      username: 'wish-liar',
      content,
      name: 'harrier.bin',
      corruptChunks: [0],
    })
    network.track({ stop: () => liar.close() })
    await events.waitFor((e) => e.type === 'download-failed', 'download-failed')
    // The liar gone, each retry fails at once and the fetch reads `failed` between them (while the liar
    // served, a retry could take longer than the gaps between the wish list's looks).
    await liar.close()
    await until(async () => (await wishes(bob))[0]?.matches[0]?.fetch === 'failed', 'the failed fetch')
    const alice = await network.peer('wish-frank')
    placeFile(alice.dir, 'harrier.bin', content)
    await until(async () => (await wishes(bob))[0]?.matches[0]?.fetch === 'fetched', 'the fetch retried')
    expect(sha(readFileSync(join(bob.dir, 'harrier.bin')))).toBe(sha(content))
    expect(events.events().filter((e) => e.type === 'wish-matched')).toHaveLength(1)
    expect(await events.interrupt()).toBe(0)
  })
  // The last test of the file: the directory goes away for good.
  it('backs off while the directory is down, and the daemon goes on answering', async () => {
    const bob = await network.peer('wish-gina', { env })
    expect((await bob.cli(['wish', 'add', 'kestrel'])).code).toBe(0)
    await network.stopDirectory()
    const waits = async () =>
      [...bob.output().matchAll(/wishes: .* \(searching again in ([\d.]+) s\)/g)].map((m) => Number(m[1]))
    await until(async () => (await waits()).length >= 3, 'three runs that found the directory down')
    const [first = 0, second = 0, third = 0] = await waits()
    expect(second).toBeGreaterThan(first)
    expect(third).toBeGreaterThan(second)
    const [wish] = await wishes(bob)
    expect(wish?.query).toBe('kestrel')
  })
})
