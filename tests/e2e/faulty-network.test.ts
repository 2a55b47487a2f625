import { createHash, randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { SESSION_CHECK_SECONDS } from '../../peer/src/wire/auth.ts'
import { startLyingPeer } from '../support/lying-peer.ts'
import { recordedChunks } from '../support/part-files.ts'
import { until } from '../support/peer-process.ts'
import { useTestNetwork } from '../support/test-network.ts'

/**
 * Faults of the network rather than of the bytes: a source that takes calls and never answers, and the
 * directory dying while a download runs. Both last longer than a timeout of the daemon's on purpose
 * (seconds of silence before a source is given up, 20 unless PEERDIR_STALL_MS says; SESSION_CHECK_SECONDS
 * before a caller is checked again).
 */
const MiB = 1024 * 1024
const network = useTestNetwork()

/** A peer that claims `content`, answers its manifest, and lets every Download call hang. */
async function staller(username: string, content: Buffer) {
  const peer = await startLyingPeer({
    directoryUrl: network.directoryUrl,
    username,
    content,
    name: 'signal.bin',
    corruptChunks: [],
    stallDownloads: true,
  })
  network.track({ stop: () => peer.close() })
  return peer
}

async function source(name: string, content: Buffer, rate: string) {
  const holder = await network.peer(name, { args: ['--max-upload-rate', rate] })
  writeFileSync(join(holder.dir, 'signal.bin'), content)
  await holder.waitFor(/published changes: \+1/)
  return holder
}

describe('a faulty network', () => {
  it('drops a source that takes the call and never sends a byte, and gets everything from the other', async () => {
    const content = randomBytes(6 * MiB)
    const sha = createHash('sha256').update(content).digest('hex')
    // The downloader gives a silent source 6 s (PEERDIR_STALL_MS; 20 s unset). At 512 KiB/s the honest
    // source needs 12 s for the file, twice what the staller is given; each of its 4 calls brings 768 KiB
    // in 6 s, three times what a call must bring not to count as stalled.
    const honest = await source('steady', content, '512K')
    await staller('staller', content)
    const fetcher = await network.peer('patient', { env: { PEERDIR_STALL_MS: '6000' } })
    const got = await fetcher.cli(['get', sha, '--json'])
    expect(got.code, got.stderr).toBe(0)
    const result = JSON.parse(got.stdout)
    expect(result.dropped.find((d: { username: string }) => d.username === 'staller')?.reason).toMatch(
      /stalled for 6 s/,
    )
    expect(result.bytesPerSource).toMatchObject({ [honest.name]: content.length, staller: 0 })
    expect(readFileSync(join(fetcher.dir, 'signal.bin')).equals(content)).toBe(true)
  }, 90_000)

  it('asks another source for the last chunks (endgame) instead of waiting out one that hangs', async () => {
    const content = randomBytes(6 * MiB)
    const sha = createHash('sha256').update(content).digest('hex')
    // 3 s at 2 MiB/s: time for the staller to be given chunks, far less than the 20 s before it is dropped.
    const steady = await source('endgame-steady', content, '2M')
    const hanging = await staller('endgame-staller', content)
    const fetcher = await network.peer('endgame-fetcher')
    const got = await fetcher.cli(['get', sha, '--json'])
    expect(got.code, got.stderr).toBe(0)
    const result = JSON.parse(got.stdout)
    // It was given chunks, and the download ended without giving up on it: only endgame finishes so.
    expect(hanging.downloadCalls()).toBeGreaterThan(0)
    expect(result.dropped).toEqual([])
    expect(result.bytesPerSource).toMatchObject({ [steady.name]: content.length, 'endgame-staller': 0 })
    expect(readFileSync(join(fetcher.dir, 'signal.bin')).equals(content)).toBe(true)
  })

  it('finishes a download when the directory dies under it: the source trusts the signature alone', async () => {
    const content = randomBytes(8 * MiB)
    const sha = createHash('sha256').update(content).digest('hex')
    // 16 s at 512 KiB/s: the source asks the directory about the caller's session again after
    // SESSION_CHECK_SECONDS, by which time there is no directory to ask.
    expect(SESSION_CHECK_SECONDS).toBeLessThan(12)
    await source('keeps-serving', content, '512K')
    const fetcher = await network.peer('orphan')
    const get = fetcher.cli(['get', sha, '--json'])
    await until(async () => recordedChunks(fetcher.dir).length >= 1, 'a first chunk verified')
    await network.stopDirectory()
    const got = await get
    expect(got.code, got.stderr).toBe(0)
    expect(JSON.parse(got.stdout).dropped).toEqual([])
    expect(readFileSync(join(fetcher.dir, 'signal.bin')).equals(content)).toBe(true)
  }, 90_000)
})
