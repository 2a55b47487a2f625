import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { subscribedFollower } from '../support/event-follower.ts'
import { type PeerProcess, placeFile, until } from '../support/peer-process.ts'
import { startRelayProcess } from '../support/relay-process.ts'
import { useTestNetwork } from '../support/test-network.ts'

const MiB = 1024 * 1024
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')
const network = useTestNetwork({ directoryEnv: { LEASE_SECONDS: '30' }, logOutAfterEach: true })

type Uploads = {
  slots: number
  active: { username: string; bytes: number }[]
  queued: { username: string; position: number }[]
}
type GetReport = {
  sources: { username: string; bytes: number; queued: number }[]
  dropped: { username: string; reason: string }[]
  bytesPerSource: Record<string, number>
}

async function uploads(peer: PeerProcess): Promise<Uploads> {
  const status = await peer.cli(['status', '--json'])
  expect(status.code, status.stderr).toBe(0)
  return JSON.parse(status.stdout).uploads
}

/** Waits until `peer`'s upload slots are as `wanted` says (serving whom, and who waits where). */
const slotsBecome = (peer: PeerProcess, wanted: (u: Uploads) => boolean, what: string, timeoutMs?: number) =>
  until(async () => wanted(await uploads(peer)), what, timeoutMs)

/**
 * A peer sharing `files` (published before it returns), from its start: its first publish has them
 * all (placed later, a loaded watcher may publish them one by one).
 */
async function holder(name: string, files: Record<string, Buffer>, args: string[]) {
  const dir = mkdtempSync(join(tmpdir(), `peerdir-${name}-`))
  for (const [file, content] of Object.entries(files)) placeFile(dir, file, content)
  const peer = await network.peer(name, { args, dir, waitForPublish: false })
  await peer.waitFor(new RegExp(`published ${Object.keys(files).length} files`))
  return peer
}

/**
 * One slot, two downloaders: the second asks once the first is served, waits at place 1 (seen in the
 * source's status), and both finish verified; then no slot is held. `args`: how the source is started.
 */
async function oneSlotTwoDownloaders(name: string, args: string[]) {
  // 8 MiB at 1 MiB/s: each download takes about 8 s.
  const content = randomBytes(8 * MiB)
  const source = await holder(name, { 'eight.bin': content }, [
    '--upload-slots',
    '1',
    '--max-upload-rate',
    '1M',
    ...args,
  ])
  // Reached through the relay when the source is relayed: no punched link around it (hole-punch.test.ts).
  const env = { PEERDIR_PUNCH: 'off' }
  const [first, second] = await Promise.all([
    network.peer(`${name}-first`, { env }),
    network.peer(`${name}-second`, { env }),
  ])
  let firstEnded = false
  const firstGet = first.cli(['get', sha(content), '--json']).finally(() => {
    firstEnded = true
  })
  await slotsBecome(source, (u) => u.active[0]?.username === first.name, 'the first to be served')
  // The first holds its slot until the second is seen waiting, however long the second takes to ask on
  // a loaded machine: frozen but for a quarter of a second every 4 s, it takes a few hundred KiB each
  // time (what its buffers and stream window took in meanwhile), enough for the source's stall rule
  // (256 KiB in 20 s), and its 8 MiB last a minute or more. Two runs side by side once let the first
  // finish before the second asked, once the second asked after more than the 20 s that a first
  // frozen throughout keeps its slot, and once after more than 30 s.
  const freeze = () => first.child.kill('SIGSTOP')
  freeze()
  let awake: NodeJS.Timeout | undefined
  const pulses = setInterval(() => {
    first.child.kill('SIGCONT')
    awake = setTimeout(freeze, 250)
  }, 4000)
  const secondGet = second.cli(['get', sha(content), '--json'])
  await slotsBecome(
    source,
    (u) => {
      if (firstEnded) throw new Error('the first finished before the second was seen waiting')
      return (
        u.slots === 1 &&
        u.active.length === 1 &&
        u.active[0]?.username === first.name &&
        u.queued.length === 1 &&
        u.queued[0]?.username === second.name &&
        u.queued[0]?.position === 1
      )
    },
    'the second to wait at place 1 while the first is served',
    90_000,
  ).finally(() => {
    clearInterval(pulses)
    clearTimeout(awake)
    first.child.kill('SIGCONT')
  })
  const [got1, got2] = await Promise.all([firstGet, secondGet])
  expect(got1.code, got1.stderr).toBe(0)
  expect(got2.code, got2.stderr).toBe(0)
  // Queued is no failure: the downloader said so, waited, and dropped nobody.
  expect(got2.stderr).toContain(
    `waiting for a turn: every source has us in its upload queue (queued at ${name}: 1st)`,
  )
  for (const [peer, got] of [
    [first, got1],
    [second, got2],
  ] as const) {
    const report = JSON.parse(got.stdout) as GetReport
    expect(report.dropped).toEqual([])
    // The second may have fetched some from the first, which shares the file once it has it.
    expect(Object.values(report.bytesPerSource).reduce((a, b) => a + b, 0)).toBe(content.length)
    expect(sha(readFileSync(join(peer.dir, 'eight.bin')))).toBe(sha(content))
  }
  await slotsBecome(source, (u) => u.active.length === 0 && u.queued.length === 0, 'no slot to be held')
}

describe('upload slots', () => {
  it('serves one downloader at a time with one slot: the other waits first in line, then both finish verified', async () => {
    await oneSlotTwoDownloaders('slotted', [])
  })

  it('keeps the slots of a peer reached through a relay per account, as on its own port', async () => {
    const relay = network.track(
      await startRelayProcess({ host: '127.0.0.1', directoryUrl: network.directoryUrl }),
    )
    await oneSlotTwoDownloaders('relayed', ['--relay', relay.url])
  })

  it('fetches from another source while one keeps it queued, then from both once its turn comes', async () => {
    // 8 MiB from two sources. `busy` (1 MiB/s) has one slot, taken first by an occupier fetching 48 MiB
    // only `busy` has: the fetcher waits in its queue and fetches from `free` meanwhile, which is slow
    // (256 KiB/s, 32 s for the file). Once the fetcher is seen waiting, the occupier is stopped, so its
    // turn at `busy` comes while it is still at it, however slow the machine.
    const wanted = randomBytes(8 * MiB)
    const occupying = randomBytes(48 * MiB)
    const busy = await holder('busy', { 'wanted.bin': wanted, 'only-here.bin': occupying }, [
      '--upload-slots',
      '1',
      '--max-upload-rate',
      '1M',
    ])
    const free = await holder('free', { 'wanted.bin': wanted }, ['--max-upload-rate', '256K'])
    const occupier = await network.peer('occupier')
    const fetcher = await network.peer('fetcher')
    const occupied = occupier.cli(['get', sha(occupying), '--json'])
    await slotsBecome(busy, (u) => u.active[0]?.username === 'occupier', 'the occupier to be served')
    const events = await subscribedFollower(fetcher, network.stateRoot)
    const fetched = fetcher.cli(['get', sha(wanted), '--json'])
    await until(async () => {
      const [atBusy, atFree] = await Promise.all([uploads(busy), uploads(free)])
      return (
        atBusy.queued.some((q) => q.username === 'fetcher') &&
        atFree.active.some((a) => a.username === 'fetcher')
      )
    }, 'the fetcher to wait at busy while free serves it')
    await occupier.stop('SIGKILL')
    await occupied
    await slotsBecome(busy, (u) => u.active[0]?.username === 'fetcher', 'the fetcher’s turn at busy')
    const got = await fetched
    expect(got.code, got.stderr).toBe(0)
    expect(got.stderr).toMatch(/wanted\.bin: queued at busy: 1st\n/)
    const report = JSON.parse(got.stdout) as GetReport
    expect(report.dropped).toEqual([])
    expect(report.bytesPerSource.busy).toBeGreaterThan(0)
    expect(Object.values(report.bytesPerSource).reduce((a, b) => a + b, 0)).toBe(wanted.length)
    expect(sha(readFileSync(join(fetcher.dir, 'wanted.bin')))).toBe(sha(wanted))
    // A source that served us is no longer reported as queueing us.
    expect(report.sources.find((s) => s.username === 'busy')?.queued).toBe(0)
    await events.waitFor(
      (e) => e.type === 'download-queued' && e.queuedAt === 'busy' && e.queuePosition === 1,
      'the download queued at busy',
    )
    await events.waitFor(
      (e) => e.type === 'download-queued' && e.queuedAt === 'busy' && e.queuePosition === 0,
      'busy serving the download once its turn came',
    )
    await events.interrupt()
  })
})
