import { spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { nodeBin } from '../support/directory-process.ts'
import { recordedChunks } from '../support/part-files.ts'
import { peerBin, until } from '../support/peer-process.ts'
import { commandUnavailable, mustSkip } from '../support/requirements.ts'
import { startTerminal } from '../support/terminal.ts'
import { useTestNetwork } from '../support/test-network.ts'

// Leases far longer than any pause of a loaded machine; each test's peers log out when it ends.
const network = useTestNetwork({ directoryEnv: { LEASE_SECONDS: '30' }, logOutAfterEach: true })

const noTmux = mustSkip('TMUX', commandUnavailable('tmux', ['-V'], 'tmux'))
const MiB = 1024 * 1024
const TOP = 'Nightjar Ensemble'
const SONGS = `${TOP}/Songs from Härrow Lane`
const BIG = `${TOP}/Extras/shared big.bin`
/** Three levels deep, spaces and Unicode in names; BIG is also held by another peer. */
const album: Record<string, Buffer> = {
  [`${SONGS}/01 opening.flac`]: randomBytes(3 * MiB + 17),
  [`${SONGS}/02 the 🐦 sings.flac`]: randomBytes(2 * MiB + 5),
  [`${SONGS}/Bonus disc/03 coda.flac`]: randomBytes(MiB + 3),
  [`${TOP}/cover.jpg`]: randomBytes(50_000),
  [BIG]: randomBytes(8 * MiB),
}
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

function writeTree(files: Record<string, Buffer>): string {
  const dir = mkdtempSync(join(tmpdir(), 'peerdir-share-'))
  for (const [path, bytes] of Object.entries(files)) {
    mkdirSync(join(dir, dirname(path)), { recursive: true })
    writeFileSync(join(dir, path), bytes)
  }
  return dir
}

/** Alice shares the album (published in her first index), serving at most `rate` bytes a second. */
const alice = (rate = '64M') =>
  network.peer('alice', { dir: writeTree(album), args: ['--max-upload-rate', rate] })

/** Every file of the album under `out` is byte for byte the one alice shares. */
function expectAlbumIn(out: string) {
  for (const [path, bytes] of Object.entries(album))
    expect(readFileSync(join(out, path)).equals(bytes), path).toBe(true)
  const visible = readdirSync(join(out, TOP), { recursive: true, encoding: 'utf8' })
    .filter((p) => !p.split('/').some((segment) => segment.startsWith('.')))
    .map((p) => `${TOP}/${p}`)
  const folders = new Set(Object.keys(album).flatMap((p) => ancestors(p)))
  expect(visible.sort()).toEqual([...Object.keys(album), ...folders].filter((p) => p !== TOP).sort())
}
const ancestors = (path: string) =>
  path
    .split('/')
    .slice(0, -1)
    .map((_, i, parts) => parts.slice(0, i + 1).join('/'))

describe('folders', () => {
  it('publishes a nested share with paths: found by folder words, browsed level by level', async () => {
    await alice()
    const bob = await network.peer('bob')
    const found = await bob.cli(['search', 'nightjar härrow', '--json'])
    expect(found.code, found.stderr).toBe(0)
    const results = JSON.parse(found.stdout).results as { name: string; path: string }[]
    expect(results.map((r) => `${r.path}/${r.name}`).sort()).toEqual([
      `${SONGS}/01 opening.flac`,
      `${SONGS}/02 the 🐦 sings.flac`,
      `${SONGS}/Bonus disc/03 coda.flac`,
    ])
    expect((await bob.cli(['search', 'opening'])).stdout).toMatch(
      /01 opening\.flac .* Nightjar Ensemble\/Songs from Härrow Lane\n/,
    )

    // The menu's search (option 4) shows the folder too.
    const menu = spawnSync(nodeBin, [peerBin, 'menu', '--port', String(bob.port)], {
      input: '4\nopening\n\n',
      env: { ...process.env, PEERDIR_STATE_DIR: network.stateRoot },
      encoding: 'utf8',
    })
    expect(menu.status, menu.stderr).toBe(0)
    expect(menu.stdout).toMatch(/01 opening\.flac .* Nightjar Ensemble\/Songs from Härrow Lane\n/)

    const top = await bob.cli(['browse', 'alice'])
    expect(top.code, top.stderr).toBe(0)
    expect(top.stdout).toMatch(/^alice\/ \(up\): 1 folders, 0 files\n/)
    expect(top.stdout).toMatch(/\nNightjar Ensemble\/\s+5\s+14\.\d+ MiB\n?/)

    const level = await bob.cli(['browse', `alice/${TOP}`, '--json'])
    expect(level.code, level.stderr).toBe(0)
    const listing = JSON.parse(level.stdout)
    expect(listing).toMatchObject({ username: 'alice', state: 'up', path: TOP })
    expect(listing.folders).toEqual([
      {
        name: 'Extras',
        files: 1,
        bytes: album[BIG]?.length,
      },
      {
        name: 'Songs from Härrow Lane',
        files: 3,
        bytes: 6 * MiB + 25,
      },
    ])
    expect(listing.files.map((f: { name: string; sha256: string }) => [f.name, f.sha256])).toEqual([
      ['cover.jpg', sha(album[`${TOP}/cover.jpg`] as Buffer)],
    ])
    const human = await bob.cli(['browse', `alice/${TOP}`])
    // Folders first (files, size), then files (size, short hash).
    expect(human.stdout.split('\n').slice(1, 5).join('\n')).toMatch(
      /^NAME\s+FILES\s+SIZE\s+HASH\nExtras\/\s+1\s+8\.00 MiB\nSongs from Härrow Lane\/\s+3\s+6\.00 MiB\ncover\.jpg\s+48\.8 KiB\s+[0-9a-f]{12}$/,
    )

    const all = await bob.cli(['browse', `alice/${SONGS}`, '--recursive', '--json'])
    expect(all.code, all.stderr).toBe(0)
    expect(
      JSON.parse(all.stdout)
        .files.map((f: { path: string; name: string }) => `${f.path}/${f.name}`)
        .sort(),
    ).toEqual([
      `${SONGS}/01 opening.flac`,
      `${SONGS}/02 the 🐦 sings.flac`,
      `${SONGS}/Bonus disc/03 coda.flac`,
    ])

    const nowhere = await bob.cli(['browse', 'alice/No such folder'])
    expect(nowhere.code, nowhere.stderr).toBe(3)
  })

  it('gets a folder tree verified, structure kept, a file held by two peers taken from both', async () => {
    // Capped so that neither can serve the shared file alone before the other delivers a chunk of it:
    // carol needs 4 s for it, alice 4.7 s for it and the rest of the album (at 8M, 1.75 s was shorter
    // than a loaded machine took to bring carol's first chunk).
    await alice('3M')
    const carol = await network.peer('carol', {
      dir: writeTree({ 'elsewhere/big copy.bin': album[BIG] as Buffer }),
      args: ['--max-upload-rate', '2M'],
    })
    expect(carol.output()).toMatch(/published 1 files/)
    const bob = await network.peer('bob2')
    const out = mkdtempSync(join(tmpdir(), 'peerdir-out-'))
    const got = await bob.cli(['get', `alice/${TOP}`, '--out', out, '--json'])
    expect(got.code, got.stderr).toBe(0)
    expectAlbumIn(out)
    const result = JSON.parse(got.stdout)
    expect(result).toMatchObject({ kind: 'folder', verified: 5, failed: 0 })
    const big = result.files.find((f: { name: string }) => f.name === 'shared big.bin')
    expect(big.savedTo).toBe(join(out, BIG))
    expect(big.bytesPerSource.alice).toBeGreaterThan(0)
    expect(big.bytesPerSource.carol).toBeGreaterThan(0)
    expect(big.bytesPerSource.alice + big.bytesPerSource.carol).toBe(album[BIG]?.length)

    // A file path gets that one file, under its own name.
    const one = await bob.cli(['get', `alice/${SONGS}/01 opening.flac`, '--out', join(out, 'one'), '--json'])
    expect(one.code, one.stderr).toBe(0)
    expect(
      readFileSync(join(out, 'one', '01 opening.flac')).equals(album[`${SONGS}/01 opening.flac`] as Buffer),
    ).toBe(true)
    const missing = await bob.cli(['get', `alice/${TOP}/nothing.flac`])
    expect(missing.code, missing.stderr).toBe(3)
  })

  it('resumes a folder get killed half-way: verified files kept, parts resumed', async () => {
    await alice('2M')
    const bob = await network.peer('bob3')
    const out = mkdtempSync(join(tmpdir(), 'peerdir-out-'))
    const first = bob.cli(['get', `alice/${TOP}`, '--out', out, '--json'])
    // Two mebibytes a second for 14 MiB: the small files are in place long before the big one is whole.
    await until(
      async () =>
        existsSync(join(out, TOP, 'cover.jpg')) &&
        existsSync(join(out, TOP, 'Extras')) &&
        recordedChunks(join(out, TOP, 'Extras')).length >= 2,
      'the cover in place and two chunks of the big file verified',
    )
    await bob.stop('SIGKILL')
    expect((await first).code).not.toBe(0)
    expect(existsSync(join(out, BIG))).toBe(false)
    const again = await network.peer('bob3', { dir: bob.dir, port: bob.port })
    const second = await again.cli(['get', `alice/${TOP}`, '--out', out, '--json'])
    expect(second.code, second.stderr).toBe(0)
    expectAlbumIn(out)
    const result = JSON.parse(second.stdout)
    const byName = (name: string) => result.files.find((f: { name: string }) => f.name === name)
    expect(byName('cover.jpg')).toMatchObject({ outcome: 'verified', alreadyThere: true })
    expect(byName('shared big.bin').resumedBytes).toBeGreaterThanOrEqual(2 * MiB)
  })

  it.skipIf(noTmux)('draws one progress bar for a folder get on a terminal: files, bytes, rate', async () => {
    // At 2 MiB/s the 14 MiB take seven seconds at least: the bar is on screen part-way, even when the
    // screen is read seldom on a loaded machine (at 4 MiB/s, one run beside another missed it).
    await alice('2M')
    const bob = await network.peer('bob5')
    const out = mkdtempSync(join(tmpdir(), 'peerdir-out-'))
    const terminal = startTerminal(
      'folder-bar',
      `PEERDIR_STATE_DIR=${network.stateRoot} ${nodeBin} ${peerBin} get 'alice/${TOP}' --out ${out} ` +
        `--port ${bob.port}; echo "exit=$?"; sleep 60`,
    )
    try {
      await terminal.waitFor(/Nightjar Ensemble [0-4]\/5 files [█░]{20} +([1-9]|[1-9]\d)% .* MiB\/s ETA/)
      await terminal.waitFor('exit=0')
      expect(terminal.screen()).toMatch(/alice\/Nightjar Ensemble: 5 of 5 files verified \(14\.0 MiB\)/)
    } finally {
      terminal.close()
    }
    expectAlbumIn(out)
  })

  it('republishes a moved folder as a path change, hashing nothing again', async () => {
    const owner = await alice()
    const bob = await network.peer('bob4')
    renameSync(join(owner.dir, SONGS), join(owner.dir, TOP, 'Songs from Harrow Lane (live)'))
    await owner.waitFor(/shared folder changed: 0 new, 0 gone, 3 moved \(0 hashed\)/)
    await owner.waitFor(/published changes: \+3 -3/)
    const listing = JSON.parse((await bob.cli(['browse', `alice/${TOP}`, '--json'])).stdout)
    expect(listing.folders.map((f: { name: string }) => f.name)).toEqual([
      'Extras',
      'Songs from Harrow Lane (live)',
    ])
    const found = JSON.parse((await bob.cli(['search', 'harrow live opening', '--json'])).stdout)
    expect(found.results.map((r: { path: string }) => r.path)).toEqual([
      `${TOP}/Songs from Harrow Lane (live)`,
    ])
  })
})
