import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type NatNetwork, natNetwork, natUnavailable } from '../support/nat-network.ts'
import { type PeerProcess, until } from '../support/peer-process.ts'
import { freePort } from '../support/ports.ts'
import { type RelayProcess, startRelayProcess } from '../support/relay-process.ts'
import { mustSkip } from '../support/requirements.ts'
import { useTestNetwork } from '../support/test-network.ts'

// Two peers, each behind a home router of its own (NAT, nothing in unasked), the directory and a relay
// on the public side: the relay introduces them, and the bytes go straight from one home to the other.
const skip = mustSkip('NETNS', natUnavailable())
let nat: NatNetwork | undefined
beforeAll(() => {
  if (!skip) nat = natNetwork()
})
afterAll(() => nat?.remove())
const network = useTestNetwork({ directoryHost: () => nat?.publicHost ?? '127.0.0.1' })

const MiB = 1024 * 1024
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

type GetReport = {
  path: string
  seconds: number
  sources: { username: string; bytes: number; relayed: boolean; link: string }[]
}

/**
 * A relay that carries 1 MiB/s per peer, as an operator would cap it: what crosses it before a punch
 * succeeds is bounded by time, not by the machine's speed (a tenth of 40 MB is 4 s of it).
 */
async function cappedRelay(): Promise<RelayProcess> {
  const { publicHost } = nat as NatNetwork
  return network.track(
    await startRelayProcess({
      host: publicHost,
      directoryUrl: network.directoryUrl,
      args: ['--max-peer-rate', String(MiB)],
    }),
  )
}

/** A peer at home `side`, listening on its own loopback only and reachable through `relay`. */
async function homePeer(
  side: 0 | 1,
  name: string,
  relay: RelayProcess,
  files: Record<string, Buffer> = {},
  args: string[] = [],
) {
  const dir = mkdtempSync(join(tmpdir(), `peerdir-${name}-`))
  for (const [file, bytes] of Object.entries(files)) writeFileSync(join(dir, file), bytes)
  const peer = await network.peer(name, {
    port: await freePort(),
    dir,
    wrap: (nat as NatNetwork).homes[side].wrap,
    args: ['--host', '127.0.0.1', '--relay', relay.url, ...args],
  })
  await peer.waitFor(/registered with relay/)
  return peer
}

/** What `peer status --json` says of links punched through NAT. */
async function punched(peer: PeerProcess): Promise<{ serving: number; fetching: number }> {
  return (
    JSON.parse((await peer.cli(['status', '--json'])).stdout) as {
      punched: { serving: number; fetching: number }
    }
  ).punched
}

async function getJson(peer: PeerProcess, target: string): Promise<GetReport> {
  const result = await peer.cli(['get', target, '--json'])
  expect(result.stderr).toBe('')
  expect(result.code).toBe(0)
  return JSON.parse(result.stdout) as GetReport
}

describe.skipIf(skip)('direct links through NAT: the relay introduces, the peers connect', () => {
  it('gets 40 MB from behind one NAT to behind another with under a tenth of it through the relay', async () => {
    const relay = await cappedRelay()
    const relayBytes = (nat as NatNetwork).countPort(relay.port)
    const content = randomBytes(40 * 1000 * 1000)
    // Alice uploads at 4 MiB/s: the get lasts about 10 s, long enough to see the link in both statuses.
    const alice = await homePeer(0, 'alice', relay, { 'film.bin': content }, ['--max-upload-rate', '4M'])
    const bob = await homePeer(1, 'bob', relay)
    const before = relayBytes()

    const getting = getJson(bob, 'film.bin')
    await until(async () => (await punched(alice)).serving === 1, 'alice to serve bob over a punched link')
    await until(
      async () => (await punched(bob)).fetching === 1,
      'bob to fetch from alice over a punched link',
    )
    expect((await alice.cli(['status'])).stdout).toContain(
      'direct links through NAT: 1 callers served, 0 sources fetched from',
    )
    const report = await getting

    expect(sha(readFileSync(report.path))).toBe(sha(content))
    expect(report.sources).toMatchObject([
      { username: 'alice', bytes: content.length, relayed: true, link: 'punched' },
    ])
    const through = relayBytes() - before
    expect(through).toBeLessThan(content.length / 10)
    const metrics = await (await fetch(`${relay.url}/metrics`)).text()
    expect(metrics).toMatch(/peerdir_relay_introductions_total\{outcome="introduced"\} [1-9]/)
    expect(relay.output()).toMatch(/introduced 10\.216\.\d+\.2:\d+ to alice at 10\.215\.\d+\.2:\d+/)
    // Bob's link closed with his download.
    await until(async () => (await punched(alice)).serving === 0, 'the punched link to close')
    expect(alice.output()).not.toMatch(/unexpected/)
  })

  // What the failed punch costs in time is the bench's (`npm run bench -- --only punch`), not a test's.
  it('behind a symmetric NAT, gets the file through the relay after the punch fails', async () => {
    const homes = (nat as NatNetwork).homes
    homes[1].symmetric(true)
    try {
      const relay = await cappedRelay()
      const relayBytes = (nat as NatNetwork).countPort(relay.port)
      const content = randomBytes(4 * MiB)
      await homePeer(0, 'carol', relay, { 'song.bin': content })
      const dave = await homePeer(1, 'dave', relay)

      const report = await getJson(dave, 'song.bin')

      expect(sha(readFileSync(report.path))).toBe(sha(content))
      expect(report.sources).toMatchObject([{ username: 'carol', bytes: content.length, link: 'relayed' }])
      expect(relayBytes()).toBeGreaterThan(content.length)
      // The punch was asked for and failed: no time was spent waiting on it before the relay carried.
      expect(relay.output()).toMatch(/introduced 10\.216\.\d+\.2:\d+ to carol/)
    } finally {
      homes[1].symmetric(false)
    }
  })
})
