import { spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { create } from '@bufbuild/protobuf'
import { Code } from '@connectrpc/connect'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  UploadHeaderSchema,
  type UploadRequest,
  UploadRequestSchema,
} from '../../peer/src/gen/peerdir/v1/peer_pb.ts'
import { peerClient } from '../../peer/src/wire/peer-client.ts'
import { codeOf } from '../support/connect-codes.ts'
import {
  type DirectoryProcess,
  nodeBin,
  repoRoot,
  startDirectoryProcess,
} from '../support/directory-process.ts'
import { type PeerProcess, peerBin, startPeer, testStateRoot, until } from '../support/peer-process.ts'
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

describe('a peer started with --accept-uploads and no limits of its own', () => {
  it('takes uploads of up to 4 GiB and holds up to 16 GiB, uploads in flight included', async () => {
    const GiB = 1024 ** 3
    // A caller of bob's: its session at the directory, and the call token it presents to bob.
    const login = await fetch(`${directory.url}/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'giver', password: 'giver password', url: 'http://127.0.0.1:9' }),
    })
    const session = ((await login.json()) as { token: string }).token
    const minted = await fetch(`${directory.url}/v1/call-tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${session}` },
      body: JSON.stringify({ audience: 'bob' }),
    })
    const token = ((await minted.json()) as { token: string }).token
    const client = peerClient(bob)
    // Only a header: the size is claimed at once; the bytes would follow once `until` settles.
    async function* headerOnly(
      size: number,
      sha256: string,
      until?: Promise<void>,
    ): AsyncIterable<UploadRequest> {
      const header = create(UploadHeaderSchema, { name: 'big.bin', size: BigInt(size), sha256 })
      yield create(UploadRequestSchema, { part: { case: 'header', value: header } })
      await until
    }
    const upload = (size: number, sha256: string, until?: Promise<void>) =>
      client.upload(headerOnly(size, sha256, until), { headers: { authorization: `Bearer ${token}` } })
    const refusal = (size: number) =>
      upload(size, randomBytes(32).toString('hex')).then(
        () => '',
        (err: Error) => err.message,
      )

    expect(await refusal(4 * GiB + 1)).toMatch(/uploads are limited to 4294967296 bytes here/)
    // Four uploads in flight fill the inbox to exactly 16 GiB (with what it holds already); one byte more
    // is refused, before anything is stored.
    const inbox = join(bob.dir, 'inbox')
    const stored = readdirSync(inbox).reduce((sum, name) => sum + statSync(join(inbox, name)).size, 0)
    let release = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    const sizes = [4 * GiB, 4 * GiB, 4 * GiB, 4 * GiB - stored]
    const hashes = sizes.map(() => randomBytes(32).toString('hex'))
    const inFlight = sizes.map((size, i) => codeOf(upload(size, hashes[i] as string, held)))
    try {
      // Each is being received (its claim made) once bob turns away a twin of it as such.
      for (const sha256 of hashes) {
        await until(
          async () => (await codeOf(upload(1, sha256))) === Code.AlreadyExists,
          'the upload to be received',
        )
      }
      expect(await refusal(1)).toMatch(
        new RegExp(`the inbox is full: ${16 * GiB} of its ${16 * GiB} bytes are used or arriving`),
      )
    } finally {
      release()
    }
    // Ended without their bytes: nothing is kept, and their claims are given back.
    expect(await Promise.all(inFlight)).toEqual(sizes.map(() => Code.DataLoss))
    expect(readdirSync(inbox).filter((name) => name.startsWith('.upload-'))).toEqual([])
  })
})
