import { spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type DirectoryProcess,
  nodeBin,
  repoRoot,
  startDirectoryProcess,
} from '../support/directory-process.ts'
import { type PeerProcess, peerBin, startPeer, testStateRoot } from '../support/peer-process.ts'
import { commandUnavailable, mustSkip } from '../support/requirements.ts'
import { startTerminal } from '../support/terminal.ts'

let directory: DirectoryProcess
let alice: PeerProcess
let bob: PeerProcess
let stateRoot: string
const content = randomBytes(2 * 1024 * 1024 + 99)

const noTmux = mustSkip('TMUX', commandUnavailable('tmux', ['-V'], 'tmux'))

beforeAll(async () => {
  stateRoot = testStateRoot()
  directory = await startDirectoryProcess()
  alice = await startPeer({ name: 'alice', directoryUrl: directory.url, stateRoot })
  writeFileSync(join(alice.dir, 'menu song.ogg'), content)
  await alice.waitFor(/published changes: \+1/)
  bob = await startPeer({ name: 'bob', directoryUrl: directory.url, stateRoot, args: ['--accept-uploads'] })
}, 60_000)
afterAll(async () => {
  await Promise.all([alice?.stop('SIGKILL'), bob?.stop('SIGKILL'), directory?.stop('SIGKILL')])
})

describe('peer menu in a real terminal (tmux)', () => {
  it.skipIf(noTmux)('logs out and in, indexes, searches and downloads', async () => {
    const terminal = startTerminal(
      'menu',
      `cd ${repoRoot} && PEERDIR_STATE_DIR=${stateRoot} ${nodeBin} ${peerBin} menu --port ${bob.port}; sleep 30`,
    )
    try {
      await terminal.waitFor('4) Search files')
      await terminal.type('2', 'Logged out.')
      await terminal.type('1', 'Logged in.')
      await terminal.type('3', /Indexed 0 files/)
      await terminal.type('4', 'Search for:')
      await terminal.type('menu song', 'Download which #')
      await terminal.type('1', /Saved menu song\.ogg to .* \(verified\)\./)
      terminal.keys('0', 'Enter')
    } finally {
      terminal.close()
    }
    const saved = readFileSync(join(bob.dir, 'menu song.ogg'))
    expect(createHash('sha256').update(saved).digest('hex')).toBe(
      createHash('sha256').update(content).digest('hex'),
    )
  })
})

describe('peer menu from a script', () => {
  it('takes its answers from a pipe as the script sent them, and quits where the input ends', async () => {
    const run = spawnSync(nodeBin, [peerBin, 'menu', '--port', String(bob.port)], {
      input: '3\n4\nmenu song\n\n',
      env: { ...process.env, PEERDIR_STATE_DIR: stateRoot },
      encoding: 'utf8',
    })
    expect(run.status, run.stderr).toBe(0)
    expect(run.stdout).toMatch(/Indexed \d+ files/)
    expect(run.stdout).toMatch(/menu song\.ogg .* \d+\n/)
    expect(run.stdout).toContain('Download which # (Enter for none): ')
    expect(run.stderr).toBe('')
  })
})

describe('peer push', () => {
  it('uploads a file to a peer that accepts uploads; refused by one that does not', async () => {
    const file = join(alice.dir, 'for-bob.txt')
    writeFileSync(file, 'a present\n')
    const pushed = await alice.cli(['push', file, '--to', 'bob', '--json'])
    expect(pushed.code, pushed.stderr).toBe(0)
    expect(JSON.parse(pushed.stdout)).toMatchObject({ name: 'for-bob.txt', to: 'bob' })
    expect(readFileSync(join(bob.dir, 'inbox', 'for-bob.txt'), 'utf8')).toBe('a present\n')
    const refused = await bob.cli(['push', join(bob.dir, 'inbox', 'for-bob.txt'), '--to', 'alice'])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/does not accept uploads/)
    expect(existsSync(join(alice.dir, 'inbox'))).toBe(false)
    // The same bytes again are not kept twice; other bytes under the same name get a name of their own,
    // and the answer says which.
    const again = await alice.cli(['push', file, '--to', 'bob', '--json'])
    expect(JSON.parse(again.stdout)).toMatchObject({ name: 'for-bob.txt' })
    writeFileSync(file, 'another present\n')
    const other = await alice.cli(['push', file, '--to', 'bob', '--json'])
    expect(other.code, other.stderr).toBe(0)
    expect(JSON.parse(other.stdout)).toMatchObject({ name: 'for-bob (1).txt' })
    expect(readdirSync(join(bob.dir, 'inbox')).sort()).toEqual(['for-bob (1).txt', 'for-bob.txt'])
    expect(readFileSync(join(bob.dir, 'inbox', 'for-bob (1).txt'), 'utf8')).toBe('another present\n')
    // A file that is not there is a failure (1), not bad usage (2).
    const absent = await alice.cli(['push', join(alice.dir, 'not-here.bin'), '--to', 'bob'])
    expect(absent.code).toBe(1)
    expect(absent.stderr).toMatch(/^peer: .*not-here\.bin is not a readable file\n$/)
  })
})
