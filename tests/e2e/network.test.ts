import { createHash, randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type DirectoryProcess, startDirectoryProcess } from '../support/directory-process.ts'
import { type PeerProcess, runCli, startPeer, testStateRoot, until } from '../support/peer-process.ts'

// A directory and three `peer start` daemons as real processes on loopback.
let directory: DirectoryProcess
let alice: PeerProcess
let bob: PeerProcess
let carol: PeerProcess
let stateRoot: string
const content = randomBytes(5 * 1024 * 1024 + 12345)
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

beforeAll(async () => {
  stateRoot = testStateRoot()
  // Leases long enough that a heartbeat held up by a loaded machine never takes a peer down mid-test.
  directory = await startDirectoryProcess({ env: { LEASE_SECONDS: '30' } })
  alice = await startPeer({ name: 'alice', directoryUrl: directory.url, stateRoot })
  writeFileSync(join(alice.dir, 'Concert Recording.flac'), content)
  writeFileSync(join(alice.dir, 'notes.txt'), 'hello from alice\n')
  bob = await startPeer({ name: 'bob', directoryUrl: directory.url, stateRoot })
  carol = await startPeer({ name: 'carol', directoryUrl: directory.url, stateRoot })
  await alice.waitFor(/published changes: \+2/)
}, 120_000)

afterAll(async () => {
  await Promise.all([alice, bob, carol].map((p) => p?.stop('SIGKILL')))
  await directory?.stop('SIGKILL')
})

const searchJson = async (peer: PeerProcess, text: string) => {
  const result = await peer.cli(['search', text, '--json'])
  return JSON.parse(result.stdout) as {
    results: { name: string; sha256: string; sources: { username: string }[] }[]
  }
}

describe('a network of real processes', () => {
  it('finds a file across peers and downloads it byte-identical; the new holder becomes a source', async () => {
    const found = await searchJson(bob, 'concert')
    expect(found.results.map((r) => r.name)).toEqual(['Concert Recording.flac'])
    expect(found.results[0]?.sources.map((s) => s.username)).toEqual(['alice'])

    const got = await bob.cli(['get', 'Concert Recording.flac', '--json'])
    expect(got.code, got.stderr).toBe(0)
    const result = JSON.parse(got.stdout)
    expect(result).toMatchObject({
      name: 'Concert Recording.flac',
      size: content.length,
      sha256: sha(content),
    })
    expect(sha(readFileSync(join(bob.dir, 'Concert Recording.flac')))).toBe(sha(content))

    const after = await until(async () => {
      const r = await searchJson(carol, 'concert')
      return (r.results[0]?.sources.length ?? 0) === 2 && r
    }, 'bob to show up as a source')
    expect(after.results[0]?.sources.map((s) => s.username).sort()).toEqual(['alice', 'bob'])
  })

  it('prints human output without progress bars when stdout is not a terminal, and --json documents', async () => {
    const got = await carol.cli(['get', sha(content)])
    expect(got.code, got.stderr).toBe(0)
    expect(got.stdout).toMatch(/^Concert Recording\.flac \(5\.01 MiB\) verified and saved to .*\n$/)
    expect(got.stdout).not.toContain('\r')
    const files = JSON.parse((await carol.cli(['files', '--json'])).stdout)
    expect(files.files.map((f: { name: string }) => f.name)).toEqual(['Concert Recording.flac'])
    const peers = JSON.parse((await carol.cli(['peers', '--json'])).stdout)
    expect(peers.peers.map((p: { username: string }) => p.username).sort()).toEqual(['alice', 'bob', 'carol'])
    const status = JSON.parse((await carol.cli(['status', '--json'])).stdout)
    expect(status).toMatchObject({ username: 'carol', state: 'up', files: 1 })
  })

  it('exits 3 with one clear line for a file nobody has, 2 for bad usage, 1 without a daemon', async () => {
    const missing = await bob.cli(['get', 'no such file anywhere.bin'])
    expect(missing.code).toBe(3)
    expect(missing.stderr.trim().split('\n')).toHaveLength(1)
    expect(missing.stderr).toMatch(/^peer: nothing on the network matches/)
    const none = await bob.cli(['search', 'zzzz-nothing'])
    expect(none.code).toBe(3)
    const unknown = await bob.cli(['frobnicate'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toMatch(/^peer: unknown command 'frobnicate'; run `peer --help` for usage\n$/)
    // Every numeric option is checked at the edge: one line saying what is allowed, exit 2.
    const limits = await Promise.all(
      ['-5', '1.5', 'abc', '0', '501'].map((n) => bob.cli(['search', 'x', '--limit', n])),
    )
    for (const r of limits) {
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr).toMatch(
        /^peer: option '--limit <n>' argument '.*' is invalid\. must be a whole number from 1 to 500; run `peer --help` for usage\n$/,
      )
    }
    const noDaemon = await runCli(['status', '--port', '1'], { PEERDIR_STATE_DIR: stateRoot })
    expect(noDaemon.code).toBe(1)
    expect(noDaemon.stderr).toMatch(/no peer daemon .* port 1/)
    // A script that asked for JSON gets a JSON document even when the command fails.
    const failedJson = await bob.cli(['get', 'no such file anywhere.bin', '--json'])
    expect(failedJson.code).toBe(3)
    expect(JSON.parse(failedJson.stdout)).toEqual({
      error: { message: expect.stringMatching(/^nothing on the network matches/), exitCode: 3 },
    })
    for (const r of [missing, unknown, noDaemon, ...limits]) {
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
      expect(r.stderr).not.toMatch(/\n\s+at /)
    }
  })

  it('publishes folder changes on its own and `peer index` rescans on demand', async () => {
    writeFileSync(join(carol.dir, 'fresh idea.md'), 'new file\n')
    await until(
      async () => (await searchJson(alice, 'fresh idea')).results.length === 1,
      'the watcher to publish',
    )
    const index = JSON.parse((await carol.cli(['index', '--json'])).stdout)
    expect(index.files).toBe(2)
  })

  it('logout takes a peer down at once and login brings it back', async () => {
    expect((await alice.cli(['logout'])).code).toBe(0)
    const down = await searchJson(bob, 'notes.txt')
    expect(down.results).toEqual([])
    expect((await alice.cli(['login'])).code).toBe(0)
    const up = await searchJson(bob, 'notes.txt')
    expect(up.results[0]?.sources.map((s) => s.username)).toEqual(['alice'])
  })
  it('downloads a file whose name is the longest a file system takes: 255 bytes of multi-byte UTF-8', async () => {
    // 127 two-byte characters and one more byte: 255 bytes, and `.<name>.<hash>.part.json.tmp` would not fit.
    const name = `${'é'.repeat(127)}x`
    expect(Buffer.byteLength(name)).toBe(255)
    const bytes = randomBytes(1024 * 1024 + 7)
    writeFileSync(join(alice.dir, name), bytes)
    await until(
      async () => (await searchJson(bob, 'éééx')).results.length === 1,
      'the long name to be published',
    )
    const got = await bob.cli(['get', sha(bytes), '--json'])
    expect(got.code, got.stderr).toBe(0)
    expect(JSON.parse(got.stdout).name).toBe(name)
    expect(readFileSync(join(bob.dir, name)).equals(bytes)).toBe(true)
  })
})
