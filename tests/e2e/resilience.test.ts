import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { type DirectoryProcess, startDirectoryProcess } from '../support/directory-process.ts'
import { lastSeen } from '../support/heartbeats.ts'
import { type PeerProcess, startPeer, testStateRoot, until } from '../support/peer-process.ts'

const running: { stop: (signal?: NodeJS.Signals) => Promise<unknown> }[] = []
afterAll(async () => {
  await Promise.all(running.map((p) => p.stop('SIGKILL')))
})

const sourcesOf = async (directory: DirectoryProcess, text: string) => {
  const body = (await (await fetch(`${directory.url}/v1/search?q=${encodeURIComponent(text)}`)).json()) as {
    results: { sources: { username: string }[] }[]
  }
  return body.results.flatMap((r) => r.sources.map((s) => s.username)).sort()
}

describe('peers and directory dying and coming back', () => {
  it('a peer killed with -9 drops out after its lease; restarted, it is back without rehashing', async () => {
    const stateRoot = testStateRoot()
    // Long enough that dave is certainly up at the looks below; its expiry is waited on, not timed.
    const directory = await startDirectoryProcess({ env: { LEASE_SECONDS: '6' } })
    running.push(directory)
    let dave: PeerProcess = await startPeer({ name: 'dave', directoryUrl: directory.url, stateRoot })
    running.push(dave)
    writeFileSync(join(dave.dir, 'big-archive.tar'), randomBytes(3 * 1024 * 1024))
    await dave.waitFor(/published changes: \+1/)
    expect(await sourcesOf(directory, 'big-archive')).toEqual(['dave'])

    await dave.stop('SIGKILL')
    await until(
      async () => (await sourcesOf(directory, 'big-archive')).length === 0,
      'the lease to expire',
      40_000,
    )
    const peers = (await (await fetch(`${directory.url}/v1/peers`)).json()) as { peers: { state: string }[] }
    expect(peers.peers[0]?.state).toBe('down')

    dave = await startPeer({
      name: 'dave',
      directoryUrl: directory.url,
      stateRoot,
      dir: dave.dir,
      port: dave.port,
    })
    running.push(dave)
    expect(dave.output()).toMatch(/1 files \(0 hashed, the rest from cache\)/)
    expect(await sourcesOf(directory, 'big-archive')).toEqual(['dave'])
  })

  it('peers log in again and republish on their own when the directory restarts (even with its data lost)', async () => {
    const stateRoot = testStateRoot()
    let directory = await startDirectoryProcess({ env: { LEASE_SECONDS: '2' } })
    running.push(directory)
    const erin = await startPeer({ name: 'erin', directoryUrl: directory.url, stateRoot })
    running.push(erin)
    writeFileSync(join(erin.dir, 'survivor.txt'), 'still here\n')
    await erin.waitFor(/published changes: \+1/)

    // Same database: the peer's token still verifies and its heartbeats resume.
    await directory.stop('SIGTERM')
    directory = await startDirectoryProcess({
      port: directory.port,
      dbUrl: directory.dbUrl,
      env: { LEASE_SECONDS: '2' },
    })
    running.push(directory)
    await until(
      async () => (await sourcesOf(directory, 'survivor')).includes('erin'),
      'erin back after restart',
    )

    // A new, empty database: the old token is refused, so the peer logs in again and republishes.
    await directory.stop('SIGKILL')
    directory = await startDirectoryProcess({ port: directory.port, env: { LEASE_SECONDS: '2' } })
    running.push(directory)
    await until(
      async () => (await sourcesOf(directory, 'survivor')).includes('erin'),
      'erin republished',
      30_000,
    )
    expect(erin.output()).toMatch(/logging in again/)
    expect(erin.child.exitCode).toBeNull()
  })

  it('a daemon keeps working past its first token’s lifetime: heartbeats renew it, and peers accept the renewed one', async () => {
    const stateRoot = testStateRoot()
    // The renewer's token is renewed at a heartbeat once it has used half its life (8 s of 16): with
    // heartbeats every 3 s, a pause of 5 s would be needed to miss that window, 6 s to take the holder down.
    const TTL = 16
    const directory = await startDirectoryProcess({
      env: { LEASE_SECONDS: '9', TOKEN_TTL_SECONDS: String(TTL) },
    })
    running.push(directory)
    const content = randomBytes(2 * 1024 * 1024 + 1)
    const holder = await startPeer({ name: 'holder', directoryUrl: directory.url, stateRoot })
    running.push(holder)
    writeFileSync(join(holder.dir, 'kept.bin'), content)
    await holder.waitFor(/published changes: \+1/)
    const renewer = await startPeer({ name: 'renewer', directoryUrl: directory.url, stateRoot })
    running.push(renewer)
    // Logged in before now, its first token has expired by then: a heartbeat the directory takes after
    // that was made with a renewed one (or with a new login, which the log would show).
    const firstTokenExpired = Date.now() + TTL * 1000
    await until(
      async () => (await lastSeen(directory.url, 'renewer')) > firstTokenExpired,
      'a heartbeat of the renewer after its first token expired',
      TTL * 1000 + 30_000,
    )
    // The holder checks the renewer's token by its signature and expiry: only a renewed one passes.
    const got = await renewer.cli(['get', 'kept.bin', '--json'])
    expect(got.code, got.stderr).toBe(0)
    expect(JSON.parse(got.stdout).bytesPerSource).toEqual({ holder: content.length })
    expect(renewer.output()).not.toMatch(/logging in again/)
  })

  it('SIGTERM logs the peer out and exits 0', async () => {
    const stateRoot = testStateRoot()
    const directory = await startDirectoryProcess({ env: { LEASE_SECONDS: '60' } })
    running.push(directory)
    const frank = await startPeer({ name: 'frank', directoryUrl: directory.url, stateRoot })
    expect(await frank.stop('SIGTERM')).toBe(0)
    const peers = (await (await fetch(`${directory.url}/v1/peers`)).json()) as { peers: { state: string }[] }
    expect(peers.peers[0]?.state).toBe('down')
  })
})
