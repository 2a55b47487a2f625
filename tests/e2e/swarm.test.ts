import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { MAX_MANIFEST_CHUNKS } from '../../contract/schemas.ts'
import { followEvents } from '../support/event-follower.ts'
import { startLyingPeer } from '../support/lying-peer.ts'
import { partFiles, recordedChunks } from '../support/part-files.ts'
import { type PeerProcess, placeFile, until } from '../support/peer-process.ts'
import { useTestNetwork } from '../support/test-network.ts'

const MiB = 1024 * 1024
const content = randomBytes(64 * MiB)
const contentSha = createHash('sha256').update(content).digest('hex')
const NAME = 'dataset-64MiB.bin'
/** What the forgers of the size test claim: the largest size the directory takes at 1 MiB chunks. */
const HUGE_SIZE = MAX_MANIFEST_CHUNKS * MiB
const shaOfFile = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex')

// Leases far longer than any pause of a loaded machine: a source is up whenever a download asks. Each
// test's peers log out when it ends, so none is listed in the next; one killed with -9 mid-test is
// started again and logged out with the rest.
const network = useTestNetwork({ directoryEnv: { LEASE_SECONDS: '30' }, logOutAfterEach: true })

/** `count` peers that all hold the 64 MiB file, each serving at most `rate` bytes per second. */
async function sources(prefix: string, count: number, rate: string): Promise<PeerProcess[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const peer = await network.peer(`${prefix}${i + 1}`, {
        args: ['--max-upload-rate', rate],
        waitForPublish: true,
      })
      placeFile(peer.dir, NAME, content)
      await peer.waitFor(/published changes: \+1/)
      return peer
    }),
  )
}

const downloader = (name: string, dir?: string, port?: number) => network.peer(name, { dir, port })

/**
 * Earlier tests' holders of the file still listed would count as live holders of the honest variant:
 * checked where a test needs the variants' order (by live holders) to be certain. They logged out.
 */
const earlierHoldersGone = () =>
  until(async () => {
    const answer = await fetch(`${network.directoryUrl}/v1/files/${contentSha}`)
    if (answer.status === 404) return true
    const found = (await answer.json()) as { variants: { sources: unknown[] }[] }
    return found.variants.every((variant) => variant.sources.length === 0)
  }, 'the holders of earlier tests to go down')

describe('swarm downloads from many sources', () => {
  it('gets one file from three sources at once, each serving a share, byte-identical', async () => {
    await sources('s', 3, '24M')
    const fetcher = await downloader('fetcher')
    const got = await fetcher.cli(['get', contentSha, '--json'])
    expect(got.code, got.stderr).toBe(0)
    const result = JSON.parse(got.stdout)
    expect(shaOfFile(join(fetcher.dir, NAME))).toBe(contentSha)
    const shares = Object.values(result.bytesPerSource) as number[]
    expect(shares).toHaveLength(3)
    for (const bytes of shares) expect(bytes).toBeGreaterThan(0)
    expect(shares.reduce((a, b) => a + b, 0)).toBe(content.length)
    expect(result.dropped, JSON.stringify(result.dropped)).toEqual([])
  })

  it('finishes verified when a source is killed with -9 mid-transfer', async () => {
    const [first, ...rest] = await sources('k', 3, '4M')
    const fetcher = await downloader('fetcher2')
    const get = fetcher.cli(['get', contentSha, '--json'])
    // Three sources capped at 4 MiB/s need at least 5.3 s for 64 MiB. The resume record is saved once a
    // second, so it shows 8 chunks only after a second or more: at 8 MiB/s each, a loaded machine let
    // the download reach its end first, with k1's last requests cancelled as copies nobody needed and
    // nothing left to ask k1. At 4 MiB/s most of the file, and k1's runs of it, are still to come.
    await until(async () => recordedChunks(fetcher.dir).length >= 8, '8 chunks to be verified')
    await first?.stop('SIGKILL')
    const got = await get
    expect(got.code, got.stderr).toBe(0)
    const result = JSON.parse(got.stdout)
    expect(shaOfFile(join(fetcher.dir, NAME))).toBe(contentSha)
    // Earlier tests' sources logged out: k1 is the only source tried and dropped.
    expect(result.dropped.map((d: { username: string }) => d.username)).toEqual(['k1'])
    for (const survivor of rest) expect(result.bytesPerSource[survivor.name]).toBeGreaterThan(0)
    const fetched = Object.values(result.bytesPerSource as Record<string, number>)
    expect(fetched.reduce((a, b) => a + b, 0)).toBe(content.length)
    // Back (from its hash cache), so that it logs out with the others rather than stay listed for its lease.
    if (first) await network.peer(first.name, { dir: first.dir, port: first.port })
  })

  it('drops a lying source, reports it, and lets no bad byte into the file', async () => {
    // Capped at 8 MiB/s, the honest source needs 8 s for the file: the liar is certain to be asked
    // (and caught) before the honest one could have served it all.
    const [honest] = await sources('h', 1, '8M')
    const liar = await startLyingPeer({
      directoryUrl: network.directoryUrl,
      username: 'liar',
      content,
      name: NAME,
      corruptChunks: Array.from({ length: 64 }, (_, i) => i),
    })
    network.track({ stop: () => liar.close() })
    const fetcher = await downloader('fetcher3')
    const got = await fetcher.cli(['get', contentSha, '--json'])
    expect(got.code, got.stderr).toBe(0)
    const result = JSON.parse(got.stdout)
    expect(shaOfFile(join(fetcher.dir, NAME))).toBe(contentSha)
    const dropped = result.dropped.find((d: { username: string }) => d.username === 'liar')
    expect(dropped.reason).toMatch(/wrong hash/)
    expect(result.bytesPerSource[honest?.name ?? '']).toBe(content.length)
  })

  it('drops a source whose published manifest is not what its chunks make, and says so', async () => {
    // Alone, the false variant is all there is: nothing to fall back on (beside an honest holder, see below).
    const misfiled = await startLyingPeer({
      directoryUrl: network.directoryUrl,
      username: 'misfiled',
      content,
      name: NAME,
      corruptChunks: [],
      publishedManifest: 'ab'.repeat(32),
    })
    network.track({ stop: () => misfiled.close() })
    const fetcher = await downloader('fetcher7')
    const alone = await fetcher.cli(['get', contentSha, '--json'])
    expect(alone.code, alone.stderr).toBe(3)
    expect(alone.stderr).toMatch(/misfiled: sent a manifest that does not match the directory’s/)
    expect(existsSync(join(fetcher.dir, NAME))).toBe(false)
    expect(recordedChunks(fetcher.dir)).toEqual([])
  })

  /** `count` accounts that publish the 64 MiB file's sha256 with false metadata (one variant, `count` holders). */
  async function forgers(
    prefix: string,
    count: number,
    lie: { publishedManifest?: string; publishedSize?: number },
  ) {
    for (let i = 1; i <= count; i++) {
      const forger = await startLyingPeer({
        directoryUrl: network.directoryUrl,
        username: `${prefix}${i}`,
        content,
        name: NAME,
        corruptChunks: [],
        ...lie,
      })
      network.track({ stop: () => forger.close() })
    }
  }
  const forgersDropped = (result: { dropped: { username: string; reason: string }[] }, prefix: string) =>
    result.dropped
      .filter((d) => d.username.startsWith(prefix))
      .map((d) => d.username)
      .sort()

  it('gets the honest variant by name and by hash when other accounts publish the sha256 with a false manifest', async () => {
    // Three forgers to the honest one, their accounts older: their variant ranks first (the oldest
    // account's), so it is probed (and put aside) first; once the fetcher holds the file too, still
    // three to two.
    await earlierHoldersGone()
    await forgers('forger', 3, { publishedManifest: 'f'.repeat(64) })
    await sources('vm', 1, '24M')
    const fetcher = await downloader('fetcher8')
    // Search lists the two variants apart, the forgers' (more holders) first.
    const found = JSON.parse((await fetcher.cli(['search', NAME, '--json'])).stdout)
    const ours = found.results.filter((r: { sha256: string }) => r.sha256 === contentSha)
    expect(ours.map((r: { manifest: string }) => r.manifest)[0]).toBe('f'.repeat(64))
    expect(ours).toHaveLength(2)
    expect((await fetcher.cli(['search', NAME])).stdout).toContain(
      `${contentSha.slice(0, 12)} (manifest ffffffff)`,
    )
    const byName = await fetcher.cli(['get', NAME, '--json'])
    expect(byName.code, byName.stderr).toBe(0)
    expect(shaOfFile(join(fetcher.dir, NAME))).toBe(contentSha)
    const named = JSON.parse(byName.stdout)
    expect(forgersDropped(named, 'forger')).toEqual(['forger1', 'forger2', 'forger3'])
    for (const d of named.dropped.filter((d: { username: string }) => d.username.startsWith('forger')))
      expect(d.reason).toMatch(/sent a manifest that does not match the directory’s/)
    expect(named.bytesPerSource.vm1).toBe(content.length)

    const out = join(fetcher.dir, 'by-hash')
    const byHash = await fetcher.cli(['get', contentSha, '--out', out, '--json'])
    expect(byHash.code, byHash.stderr).toBe(0)
    expect(shaOfFile(join(out, NAME))).toBe(contentSha)
    expect(forgersDropped(JSON.parse(byHash.stdout), 'forger')).toEqual(['forger1', 'forger2', 'forger3'])
    expect(partFiles(fetcher.dir)).toEqual([])
  })

  it('gets the honest variant when others claim the largest size the directory takes, answering its CLI throughout', async () => {
    await earlierHoldersGone()
    await forgers('bloater', 3, { publishedSize: HUGE_SIZE })
    const fetcher = await downloader('fetcher9')
    // Alone, the claim is all there is: refused (their manifests do not fit it), nothing sized from it.
    const alone = await fetcher.cli(['get', NAME])
    expect(alone.code, alone.stderr).toBe(3)
    expect(alone.stderr).toMatch(/bloater1: sent a manifest that does not match the directory’s/)
    expect(partFiles(fetcher.dir)).toEqual([])
    await sources('vs', 1, '16M')
    let finished = false
    const get = fetcher.cli(['get', NAME, '--json']).finally(() => {
      finished = true
    })
    const statuses: { code: number | null; activeDownloads: number }[] = []
    while (!finished) {
      // Each answer bounded: a CLI left waiting on a stalled daemon fails here, named, not at the test's timeout.
      const status = await fetcher.cli(['status', '--json'], { timeoutMs: 10_000 })
      expect(status.code, status.stderr).toBe(0)
      statuses.push({ code: status.code, activeDownloads: JSON.parse(status.stdout || '{}').activeDownloads })
    }
    const got = await get
    expect(got.code, got.stderr).toBe(0)
    expect(shaOfFile(join(fetcher.dir, NAME))).toBe(contentSha)
    expect(forgersDropped(JSON.parse(got.stdout), 'bloater')).toEqual(['bloater1', 'bloater2', 'bloater3'])
    expect(statuses.length).toBeGreaterThan(0)
    for (const status of statuses) expect(status.code).toBe(0)
    expect(statuses.some((s) => s.activeDownloads === 1)).toBe(true)
    expect(partFiles(fetcher.dir)).toEqual([])
  })

  it('drops every holder of a variant whose chunks verify but whose whole file is not the sha256, then gets the honest one', async () => {
    // Their manifest is true to their own 8 MiB file, so every chunk checks out; only the whole-file
    // hash at the end shows it is not the content they claim.
    // Their accounts are older than the honest holder's, so their variant is tried first.
    await earlierHoldersGone()
    const other = randomBytes(8 * MiB)
    for (let i = 1; i <= 3; i++) {
      const impostor = await startLyingPeer({
        directoryUrl: network.directoryUrl,
        username: `impostor${i}`,
        content: other,
        name: NAME,
        corruptChunks: [],
        claimedSha256: contentSha,
      })
      network.track({ stop: () => impostor.close() })
    }
    await sources('vw', 1, '24M')
    const fetcher = await downloader('fetcher10')
    const got = await fetcher.cli(['get', contentSha, '--json'])
    expect(got.code, got.stderr).toBe(0)
    expect(shaOfFile(join(fetcher.dir, NAME))).toBe(contentSha)
    const result = JSON.parse(got.stdout)
    const impostors = result.dropped.filter((d: { username: string }) => d.username.startsWith('impostor'))
    expect(impostors.map((d: { username: string }) => d.username).sort()).toEqual([
      'impostor1',
      'impostor2',
      'impostor3',
    ])
    for (const d of impostors) expect(d.reason).toMatch(/published a false manifest/)
    expect(partFiles(fetcher.dir)).toEqual([])
  })

  it('resumes after the downloading daemon is killed with -9 halfway, fetching only what is missing', async () => {
    await sources('r', 2, '8M')
    let fetcher = await downloader('fetcher4')
    const first = fetcher.cli(['get', contentSha, '--json'])
    await until(
      async () => recordedChunks(fetcher.dir).length >= 16,
      'a quarter of the chunks to be verified',
    )
    await fetcher.stop('SIGKILL')
    const interrupted = await first
    expect(interrupted.code).toBe(1)
    expect(interrupted.stderr).toMatch(
      /^peer: the peer daemon on port \d+ went away mid-command; start it again/,
    )
    expect(existsSync(join(fetcher.dir, NAME))).toBe(false)
    expect(partFiles(fetcher.dir)).toHaveLength(2) // the .part and its record

    fetcher = await downloader('fetcher4', fetcher.dir, fetcher.port)
    const again = await fetcher.cli(['get', contentSha, '--json'])
    expect(again.code, again.stderr).toBe(0)
    const result = JSON.parse(again.stdout)
    expect(result.resumedBytes).toBeGreaterThanOrEqual(16 * MiB)
    const fetched = Object.values(result.bytesPerSource as Record<string, number>).reduce((a, b) => a + b, 0)
    expect(fetched).toBe(content.length - result.resumedBytes)
    expect(shaOfFile(join(fetcher.dir, NAME))).toBe(contentSha)
    expect(partFiles(fetcher.dir)).toEqual([])
  })

  it('exits 3 with a clear line when every source is gone, keeping what it verified', async () => {
    const holders = await sources('g', 2, '4M')
    const fetcher = await downloader('fetcher5')
    const get = fetcher.cli(['get', contentSha])
    // Two sources capped at 4 MiB/s take 8 s for 64 MiB: with 4 chunks verified, most is still missing.
    await until(async () => recordedChunks(fetcher.dir).length >= 4, '4 chunks to be verified')
    const events = followEvents(fetcher, network.stateRoot)
    await Promise.all(holders.map((h) => h.stop('SIGKILL')))
    // Three times in two days' full runs this waited out the test's 3 minutes (4 s alone): say where it
    // stood, the download's events included (whether the daemon gave up, and the CLI missed it).
    let waiting: NodeJS.Timeout | undefined
    const stuck = new Promise<never>((_, reject) => {
      waiting = setTimeout(
        () =>
          reject(
            new Error(`peer get had not ended 120 s after its sources died; its daemon's log:
${fetcher.output()}
its events since the sources died:
${events
  .events()
  .filter((e) => e.type.startsWith('download'))
  .map((e) => JSON.stringify(e))
  .join('\n')}`),
          ),
        120_000,
      )
    })
    const got = await Promise.race([get, stuck]).finally(() => {
      clearTimeout(waiting)
      void events.interrupt()
    })
    expect(got.code, got.stderr + fetcher.output()).toBe(3)
    expect(got.stderr.trim().split('\n')).toHaveLength(1)
    expect(got.stderr).toMatch(/no live source can serve dataset-64MiB\.bin .*kept for resume/)
    expect(partFiles(fetcher.dir)).toHaveLength(2) // the .part and its record
    expect(recordedChunks(fetcher.dir).length).toBeGreaterThanOrEqual(4)
    expect(existsSync(join(fetcher.dir, NAME))).toBe(false)
  })
})
