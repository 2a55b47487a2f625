import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type DirectoryProcess, startDirectoryProcess } from '../support/directory-process.ts'
import { type PeerProcess, runCli, startPeer, testStateRoot } from '../support/peer-process.ts'

// `peer push` to a peer whose inbox has a quota: the saved name, bytes it has, and a refusal that
// leaves nothing behind.
let directory: DirectoryProcess
let alice: PeerProcess
let carol: PeerProcess
let stateRoot: string

beforeAll(async () => {
  stateRoot = testStateRoot()
  directory = await startDirectoryProcess()
  alice = await startPeer({ name: 'alice', directoryUrl: directory.url, stateRoot })
  carol = await startPeer({
    name: 'carol',
    directoryUrl: directory.url,
    stateRoot,
    args: ['--accept-uploads', '--inbox-quota', '1MiB'],
  })
}, 60_000)
afterAll(async () => {
  await Promise.all([alice?.stop('SIGKILL'), carol?.stop('SIGKILL'), directory?.stop('SIGKILL')])
})

describe('peer push to an inbox with a quota', () => {
  it('says the name the bytes are kept under, refuses what would pass the quota, and keeps nothing of it', async () => {
    const bytes = randomBytes(600 * 1024)
    writeFileSync(join(alice.dir, 'ok.txt'), bytes)
    writeFileSync(join(alice.dir, 'same bytes.txt'), bytes)
    const first = await alice.cli(['push', join(alice.dir, 'ok.txt'), '--to', 'carol'])
    expect(first.code, first.stderr).toBe(0)
    expect(first.stdout).toMatch(/^sent ok\.txt /)
    // The same bytes under another name: carol has them already, as ok.txt, and counts them once.
    const again = await alice.cli(['push', join(alice.dir, 'same bytes.txt'), '--to', 'carol', '--json'])
    expect(again.code, again.stderr).toBe(0)
    expect(JSON.parse(again.stdout)).toMatchObject({ name: 'ok.txt', to: 'carol' })
    writeFileSync(join(alice.dir, 'more.bin'), randomBytes(600 * 1024))
    const over = await alice.cli(['push', join(alice.dir, 'more.bin'), '--to', 'carol'])
    expect(over.code).toBe(1)
    expect(over.stderr).toMatch(/^peer: carol refused the upload: the inbox is full.*\n$/)
    // The refusal left nothing held: the same bytes again are refused for the same reason, not as
    // "being received".
    const overAgain = await alice.cli(['push', join(alice.dir, 'more.bin'), '--to', 'carol'])
    expect(overAgain.stderr).toMatch(/^peer: carol refused the upload: the inbox is full.*\n$/)
    expect(readdirSync(join(carol.dir, 'inbox'))).toEqual(['ok.txt'])
  })

  it('keeps a second push under the longest name a file may have, numbered, its extension kept', async () => {
    const name = `${'ü'.repeat(125)}.txt` // 254 bytes of UTF-8: ` (1)` fits only with a shorter stem
    const folders = [mkdtempSync(join(tmpdir(), 'push-one-')), mkdtempSync(join(tmpdir(), 'push-two-'))]
    try {
      const sent: string[] = []
      for (const [i, folder] of folders.entries()) {
        writeFileSync(join(folder, name), `push number ${i}`)
        const pushed = await alice.cli(['push', join(folder, name), '--to', 'carol', '--json'])
        expect(pushed.code, pushed.stderr).toBe(0)
        sent.push(JSON.parse(pushed.stdout).name)
      }
      expect(sent[0]).toBe(name)
      expect(sent[1]).toBe(`${'ü'.repeat(123)} (1).txt`)
      expect(readFileSync(join(carol.dir, 'inbox', sent[1] as string), 'utf8')).toBe('push number 1')
    } finally {
      for (const folder of folders) rmSync(folder, { recursive: true, force: true })
    }
  })

  it('refuses a quota that is no size, in one line, exit 2', async () => {
    const bad = await runCli(['start', '--name', 'dave', '--inbox-quota', 'lots'], {})
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/^peer: option '--inbox-quota <bytes>' argument 'lots' is invalid\..*\n$/)
  })
})
