import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync } from 'node:fs'
import http2 from 'node:http2'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { tunnelServerName } from '../../peer/src/wire/tls-server-name.ts'
import { subscribedFollower } from '../support/event-follower.ts'
import { callTokenFor, pacedDownload } from '../support/paced-download.ts'
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
 * source's status), and both finish verified; then no slot is held. `args`: how the source is started;
 * `connect`: an HTTP/2 session to it, as a downloader reaches it.
 */
async function oneSlotTwoDownloaders(
  name: string,
  args: string[],
  connect: (source: PeerProcess) => Promise<http2.ClientHttp2Session>,
) {
  // 4 MiB at 1 MiB/s.
  const content = randomBytes(4 * MiB)
  const source = await holder(name, { 'four.bin': content }, [
    '--upload-slots',
    '1',
    '--max-upload-rate',
    '1M',
    ...args,
  ])
  // The first holds its slot until the second is seen waiting, however late the second asks on a
  // loaded machine: it reads at 32 KiB/s (the source's stall rule asks for 256 KiB in 20 s), so the
  // source, which reads about 1 MiB ahead of what it sends, lets the slot go after 90 s. A `peer get`
  // put to sleep instead let the source fill its megabytes of windows and finish, freeing the slot
  // before a late second asked.
  const firstName = `${name}-first`
  const session = await connect(source)
  const first = pacedDownload(
    session,
    await callTokenFor(network.directoryUrl, firstName, name),
    sha(content),
    32 * 1024,
  )
  let firstEnded = false
  first.done
    .finally(() => {
      firstEnded = true
    })
    .catch(() => {}) // awaited below once the second is seen waiting

  try {
    await slotsBecome(source, (u) => u.active[0]?.username === firstName, 'the first to be served')
    // Reached through the relay when the source is relayed: no punched link around it (hole-punch.test.ts).
    const second = await network.peer(`${name}-second`, { env: { PEERDIR_PUNCH: 'off' } })
    const secondGet = second.cli(['get', sha(content), '--json'])
    await slotsBecome(
      source,
      (u) => {
        if (firstEnded) throw new Error('the first finished before the second was seen waiting')
        return (
          u.slots === 1 &&
          u.active.length === 1 &&
          u.active[0]?.username === firstName &&
          u.queued.length === 1 &&
          u.queued[0]?.username === second.name &&
          u.queued[0]?.position === 1
        )
      },
      'the second to wait at place 1 while the first is served',
      90_000,
    )
    first.readFreely()
    expect(sha(await first.done)).toBe(sha(content))
    const got = await secondGet
    expect(got.code, got.stderr).toBe(0)
    // Queued is no failure: the downloader said so, waited, and dropped nobody.
    expect(got.stderr).toContain(
      `waiting for a turn: every source has us in its upload queue (queued at ${name}: 1st)`,
    )
    const report = JSON.parse(got.stdout) as GetReport
    expect(report.dropped).toEqual([])
    expect(report.bytesPerSource).toEqual({ [name]: content.length })
    expect(sha(readFileSync(join(second.dir, 'four.bin')))).toBe(sha(content))
  } finally {
    session.destroy()
  }
  await slotsBecome(source, (u) => u.active.length === 0 && u.queued.length === 0, 'no slot to be held')
}

describe('upload slots', () => {
  it('serves one downloader at a time with one slot: the other waits first in line, then both finish verified', async () => {
    await oneSlotTwoDownloaders('slotted', [], async (source) => {
      const session = http2.connect(source.url, { rejectUnauthorized: false })
      session.on('error', () => {})
      return session
    })
  })

  it('keeps the slots of a peer reached through a relay per account, as on its own port', async () => {
    const relay = network.track(
      await startRelayProcess({ host: '127.0.0.1', directoryUrl: network.directoryUrl }),
    )
    await oneSlotTwoDownloaders('relayed', ['--relay', relay.url], async (source) => {
      await source.waitFor(/registered with relay/)
      // TLS straight to the relay's port, naming the peer (the tunnel a downloader opens to a listed key).
      const session = http2.connect(`https://127.0.0.1:${relay.port}`, {
        servername: tunnelServerName('relayed'),
        rejectUnauthorized: false,
      })
      session.on('error', () => {})
      return session
    })
  })

  it('fetches from another source while one keeps it queued, then from both once its turn comes', async () => {
    // 8 MiB from two sources. `busy` (1 MiB/s) has one slot, taken first by an occupier reading a file
    // only `busy` has at 64 KiB/s: the fetcher waits in its queue and fetches from `free` meanwhile, which
    // is slow (256 KiB/s, 32 s for the file). Once the fetcher is seen waiting, the occupier goes away,
    // so its turn at `busy` comes while it is still at it, however slow the machine.
    const wanted = randomBytes(8 * MiB)
    const occupying = randomBytes(8 * MiB)
    const busy = await holder('busy', { 'wanted.bin': wanted, 'only-here.bin': occupying }, [
      '--upload-slots',
      '1',
      '--max-upload-rate',
      '1M',
    ])
    const free = await holder('free', { 'wanted.bin': wanted }, ['--max-upload-rate', '256K'])
    const fetcher = await network.peer('fetcher')
    const session = http2.connect(busy.url, { rejectUnauthorized: false })
    session.on('error', () => {})
    onTestFinished(() => session.destroy())
    const occupier = pacedDownload(
      session,
      await callTokenFor(network.directoryUrl, 'occupier', 'busy'),
      sha(occupying),
      64 * 1024,
    )
    occupier.done.catch(() => {})
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
    session.destroy()
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
