import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeEach, describe, expect, it } from 'vitest'
import { startLyingPeer } from '../support/lying-peer.ts'
import { partFiles, recordedButWrong, recordedChunks } from '../support/part-files.ts'
import {
  onSmallDisk,
  type PeerProcess,
  smallDiskUnavailable,
  underFileSizeLimit,
} from '../support/peer-process.ts'
import { mustSkip } from '../support/requirements.ts'
import { useTestNetwork } from '../support/test-network.ts'

/**
 * The downloading daemon's disk fails for real: it runs under a file-size limit (`ulimit -f`), so the
 * kernel refuses writes past it with EFBIG (Node ignores SIGXFSZ), as a too-small disk would; or (as
 * root) on a small tmpfs of its own that fills up, so writes fail with ENOSPC as on a full disk.
 */
const MiB = 1024 * 1024
const CHUNKS = 6
// A content of its own for each test: a holder of an earlier test's still listed (one killed with -9)
// would be asked first by a download and miss the chunks it held.
let content = randomBytes(CHUNKS * MiB)
let contentSha = ''
beforeEach(() => {
  content = randomBytes(CHUNKS * MiB)
  contentSha = createHash('sha256').update(content).digest('hex')
})
const NAME = 'field-recording.wav'

// A lease no pause of a loaded machine outlasts; each test's peers log out when it ends.
const network = useTestNetwork({ directoryEnv: { LEASE_SECONDS: '30' }, logOutAfterEach: true })

const peer = (name: string, options: { dir?: string; port?: number; wrap?: string[] } = {}) =>
  network.peer(name, options)

/**
 * A downloader left with a .part holding every chunk but `missing`: its only source lied about those,
 * was dropped, and the get exited 3 keeping what it verified.
 */
async function partialDownload(prefix: string, missing: number[]): Promise<PeerProcess> {
  const liar = await startLyingPeer({
    directoryUrl: network.directoryUrl,
    username: `${prefix}-liar`,
    content,
    name: NAME,
    corruptChunks: missing,
  })
  const fetcher = await peer(`${prefix}-fetcher`)
  const first = await fetcher.cli(['get', contentSha])
  await liar.close()
  expect(first.code, first.stderr).toBe(3)
  expect(recordedChunks(fetcher.dir)).toEqual(
    Array.from({ length: CHUNKS }, (_, i) => i).filter((i) => !missing.includes(i)),
  )
  await fetcher.stop('SIGKILL')
  return fetcher
}

async function honestSource(name: string) {
  const source = await peer(name)
  writeFileSync(join(source.dir, NAME), content)
  await source.waitFor(/published changes: \+1/)
  return source
}

describe('the downloading peer’s disk failing mid-transfer', () => {
  it('exits 1 with one clear line, keeps the .part and its record, and resumes byte-identical once writes work', async () => {
    const before = await partialDownload('efbig', [3, 4, 5])
    await honestSource('efbig-source')

    // Chunk 3 still fits under the limit; chunks 4 and 5 hit it.
    const limited = await peer('efbig-fetcher', {
      dir: before.dir,
      port: before.port,
      wrap: underFileSizeLimit(4 * MiB),
    })
    const failed = await limited.cli(['get', contentSha])
    expect(failed.code, failed.stderr + limited.output()).toBe(1)
    const lines = failed.stderr.trim().split('\n')
    expect(lines, failed.stderr).toHaveLength(1)
    expect(lines[0]).toMatch(/^peer: cannot write .*\.part: EFBIG: file too large, write; .*peer get/)
    expect(existsSync(join(limited.dir, NAME))).toBe(false)
    expect(partFiles(limited.dir).sort()).toEqual([
      `.${NAME}.${contentSha.slice(0, 12)}.part`,
      `.${NAME}.${contentSha.slice(0, 12)}.part.json`,
    ])
    const kept = recordedChunks(limited.dir)
    expect(kept).toEqual(expect.arrayContaining([0, 1, 2]))
    expect(kept).not.toContain(4)
    expect(recordedButWrong(limited.dir, content, MiB)).toEqual([])
    await limited.stop('SIGKILL')

    const healthy = await peer('efbig-fetcher', { dir: before.dir, port: before.port })
    const again = await healthy.cli(['get', contentSha, '--json'])
    expect(again.code, again.stderr).toBe(0)
    const result = JSON.parse(again.stdout)
    expect(result.resumedBytes).toBe(kept.length * MiB)
    expect(readFileSync(join(healthy.dir, NAME)).equals(content)).toBe(true)
    expect(partFiles(healthy.dir)).toEqual([])
  })

  it('exits 1 with one clear line when the file cannot even be created at its size, and keeps nothing under the real name', async () => {
    await honestSource('toobig-source')
    const fetcher = await peer('toobig-fetcher', { wrap: underFileSizeLimit(2 * MiB) })
    const failed = await fetcher.cli(['get', contentSha])
    expect(failed.code, failed.stderr + fetcher.output()).toBe(1)
    expect(failed.stderr.trim().split('\n')).toHaveLength(1)
    expect(failed.stderr).toMatch(/^peer: .*EFBIG: file too large.*; .*peer get/)
    expect(existsSync(join(fetcher.dir, NAME))).toBe(false)
    await fetcher.stop('SIGKILL')

    const healthy = await peer('toobig-fetcher', { dir: fetcher.dir, port: fetcher.port })
    const again = await healthy.cli(['get', contentSha])
    expect(again.code, again.stderr).toBe(0)
    expect(readFileSync(join(healthy.dir, NAME)).equals(content)).toBe(true)
    expect(partFiles(healthy.dir)).toEqual([])
  })

  // Found by this suite: a write the kernel cuts short (the disk fills inside a chunk) was taken as
  // whole, so the chunk was recorded as verified, the assembled file failed its hash and every
  // verified chunk was thrown away.
  it('a write cut short inside the last chunk is a write error, not a discarded download', async () => {
    const before = await partialDownload('short', [5])
    await honestSource('short-source')
    const limited = await peer('short-fetcher', {
      dir: before.dir,
      port: before.port,
      wrap: underFileSizeLimit(5 * MiB + MiB / 2),
    })
    const failed = await limited.cli(['get', contentSha])
    expect(failed.code).toBe(1)
    expect(failed.stderr).toMatch(/EFBIG|file too large|short write/)
    expect(existsSync(join(limited.dir, NAME))).toBe(false)
    expect(recordedChunks(limited.dir)).toEqual([0, 1, 2, 3, 4])
    expect(recordedButWrong(limited.dir, content, MiB)).toEqual([])
  })
})

const noSmallDisk = mustSkip('ROOT', smallDiskUnavailable())

describe('the downloading peer’s disk filling up mid-transfer', () => {
  it.skipIf(noSmallDisk)(
    'exits 1 on ENOSPC with one clear line, keeps the .part, and resumes byte-identical once space is freed',
    async () => {
      await honestSource('enospc-source')
      const dir = mkdtempSync(join(tmpdir(), 'peerdir-small-disk-'))
      // An 8 MiB disk, 4 MiB of it taken: the 6 MiB download fills it.
      const fetcher = await peer('enospc-fetcher', { dir, wrap: onSmallDisk(dir, 8 * MiB) })
      const disk = `/proc/${fetcher.child.pid}/root${dir}`
      writeFileSync(join(disk, '.other-things'), randomBytes(4 * MiB))

      const failed = await fetcher.cli(['get', contentSha])
      expect(failed.code, failed.stderr + fetcher.output()).toBe(1)
      expect(failed.stderr.trim().split('\n')).toHaveLength(1)
      expect(failed.stderr).toMatch(
        /^peer: cannot (write|save progress beside) .*\.part: ENOSPC: no space left on device.*; .*peer get/,
      )
      expect(existsSync(join(disk, NAME))).toBe(false)
      expect(partFiles(disk)).toHaveLength(2)
      // What was verified before the disk filled is kept for resume, even though the disk is full.
      const kept = recordedChunks(disk)
      expect(kept.length).toBeGreaterThan(0)

      rmSync(join(disk, '.other-things'))
      const again = await fetcher.cli(['get', contentSha, '--json'])
      expect(again.code, again.stderr).toBe(0)
      // A chunk the disk cut short is checked again on resume and fetched anew.
      expect(JSON.parse(again.stdout).resumedBytes).toBeGreaterThanOrEqual((kept.length - 1) * MiB)
      expect(readFileSync(join(disk, NAME)).equals(content)).toBe(true)
      expect(partFiles(disk)).toEqual([])
    },
  )
})
