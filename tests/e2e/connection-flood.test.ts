import { createHash, randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { MAX_CONNECTIONS, MAX_CONNECTIONS_PER_ADDRESS } from '../../peer/src/wire/connection-slots.ts'
import {
  floodSockets,
  heldFlood,
  prefaceOnly,
  rawStreamFlood,
  sessionOnly,
} from '../support/connection-flood.ts'
import { rssMiB } from '../support/directory-load.ts'
import { type PeerProcess, until } from '../support/peer-process.ts'
import { useTestNetwork } from '../support/test-network.ts'

const MiB = 1024 * 1024
const content = randomBytes(4 * MiB)
const contentSha = createHash('sha256').update(content).digest('hex')
const NAME = 'mixtape.ogg'
const STREAMS_PER_CONNECTION = 256

const network = useTestNetwork()
const floods: { close: () => void }[] = []
afterEach(() => {
  for (const flood of floods.splice(0)) flood.close()
})

const peer = (name: string) => network.peer(name)

/** A peer holding the content: the target of the flood. */
async function holder(name: string) {
  const target = await peer(name)
  writeFileSync(join(target.dir, NAME), content)
  await target.waitFor(/published changes: \+1/)
  return target
}

async function expectServes(target: PeerProcess, fetcher: PeerProcess) {
  const got = await fetcher.cli(['get', contentSha, '--json'])
  expect(got.code, got.stderr).toBe(0)
  expect(JSON.parse(got.stdout).bytesPerSource[target.name]).toBe(content.length)
  expect(readFileSync(join(fetcher.dir, NAME)).equals(content)).toBe(true)
}

describe('a flood of connections and streams to a peer', () => {
  it('holds at most 256 streams per connection and 64 connections from one address, stays small, and serves once the flood ends', async () => {
    const target = await holder('flooded')
    const fetcher = await peer('flood-fetcher')
    const pid = target.child.pid ?? 0
    const before = await rssMiB(pid)

    // Attackers that ignore SETTINGS: 8 connections asking for 1,000 streams each, bodies never sent.
    const streamFloods = await Promise.all(Array.from({ length: 8 }, () => rawStreamFlood(target.port, 1000)))
    floods.push(...streamFloods)
    // Streams the daemon keeps: those it neither refused nor reset, on a connection it did not end.
    const heldStreams = streamFloods.map((f) => (f.goaway ? 0 : 1000 - f.refused - f.reset))
    for (const held of heldStreams) expect(held).toBeLessThanOrEqual(STREAMS_PER_CONNECTION)
    // Then 1,200 connections that never send a byte.
    const sockets = await floodSockets(target.port, 1200)
    floods.push(sockets)
    // More connected than the cap allows at once, so it is the cap, not the flood's size, that holds them.
    expect(sockets.connected).toBeGreaterThan(MAX_CONNECTIONS)
    // All from one address: its share of the slots, less the stream floods' connections.
    await until(
      async () => sockets.open() <= MAX_CONNECTIONS_PER_ADDRESS - streamFloods.length,
      `the daemon to hold at most ${MAX_CONNECTIONS_PER_ADDRESS} connections from one address (${sockets.open()} open)`,
    )
    const held = sockets.open()
    const during = await rssMiB(pid)
    expect(target.child.exitCode).toBeNull()
    expect(during - before).toBeLessThan(128)

    for (const flood of floods.splice(0)) flood.close()
    await until(async () => (await target.cli(['status'])).code === 0, 'the daemon to answer its CLI again')
    const after = await rssMiB(pid)
    await expectServes(target, fetcher)
    expect(after - before).toBeLessThan(64)
    console.log(
      `connection flood: 8 x 1,000 streams (${heldStreams.reduce((a, b) => a + b, 0)} held) + 1,200 sockets ` +
        `(${held} held); RSS ${before.toFixed(0)} MiB before, ${during.toFixed(0)} during, ${after.toFixed(0)} after`,
    )
  })

  // Found by this suite: connections that never sent a byte were held forever, so 512 of them locked
  // out every new peer and the daemon's own CLI. Now a silent connection is closed after 5 s, and the CLI
  // reaches its daemon over the state folder's socket, never through the network port's slots.
  it('answers its own CLI during a flood of 1,200 idle connections, and serves a new peer once they are closed', async () => {
    const target = await holder('slowloris-target')
    const fetcher = await peer('slowloris-fetcher')
    const sockets = await floodSockets(target.port, 1200)
    floods.push(sockets)
    expect(sockets.open()).toBeGreaterThan(0)
    const status = await target.cli(['status', '--json'])
    expect(status.code, status.stderr).toBe(0)
    expect(JSON.parse(status.stdout).username).toBe(target.name)
    // 5 s per silent connection; those waiting in the kernel's queue meanwhile get their 5 s after: about
    // 15 s on an idle machine. The deadline is only there to end a broken run (it once took over 45 s with
    // four test suites sharing two cores).
    await until(async () => sockets.open() === 0, 'the daemon to close the silent connections', 150_000)
    await expectServes(target, fetcher)
  }, 180_000)

  // Found in review (issue 14): 512 connections that sent only the HTTP/2 preface filled every slot for
  // 120 s (the preface counted as the first bytes), and every download from the peer failed with
  // ECONNRESET; repeating the flood kept it down. The downloader here dials from 127.0.0.1, the flood
  // from 127.0.0.2, and the flood replaces each connection the daemon closes, all through the download.
  it.each([
    ['the HTTP/2 preface only', prefaceOnly],
    ['HTTP/2 sessions that open no stream', (port: number, from: string) => sessionOnly(port, from)],
  ])('serves a peer on another address while one address floods it with %s', async (_, open) => {
    const target = await holder('preface-target')
    const fetcher = await peer('preface-fetcher')
    const flood = await heldFlood(MAX_CONNECTIONS, () => open(target.port, '127.0.0.2'))
    floods.push(flood)
    await expectServes(target, fetcher)
    await until(
      async () => flood.held() <= MAX_CONNECTIONS_PER_ADDRESS,
      `the daemon to hold at most ${MAX_CONNECTIONS_PER_ADDRESS} of the flood (${flood.held()})`,
    )
    console.log(`one-address flood: ${flood.stats.replaced} connections closed by the daemon and replaced`)
  })

  it('serves a new peer when idle sessions from many addresses fill every slot: the one idle longest goes', async () => {
    const target = await holder('eviction-target')
    const fetcher = await peer('eviction-fetcher')
    // 16 addresses with 32 sessions each, every one after a call of its own: no per-address cap, no
    // deadline closes them. The first address's sessions go idle before all the others.
    const addresses = Array.from({ length: 16 }, (_, i) => `127.0.1.${i + 1}`)
    const perAddress = MAX_CONNECTIONS / addresses.length
    const sessionsFrom = (from: string) =>
      Promise.all(
        Array.from({ length: perAddress }, () => sessionOnly(target.port, from, { call: 'answered' })),
      )
    const oldest = await sessionsFrom(addresses[0] as string)
    const rest = (await Promise.all(addresses.slice(1).map(sessionsFrom))).flat()
    const open = (sessions: { isClosed: () => boolean }[]) => sessions.filter((s) => !s.isClosed()).length
    floods.push(...oldest, ...rest)
    await expectServes(target, fetcher)
    await until(async () => open(oldest) < perAddress, 'the daemon to close the sessions idle longest')
    expect(open(rest)).toBe(rest.length)
    console.log(`eviction: ${perAddress - open(oldest)} idle sessions closed to serve one download`)
  })
})
