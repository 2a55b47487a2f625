import { createHash, randomBytes } from 'node:crypto'
import { closeSync, existsSync, openSync, readFileSync, rmSync, truncateSync, writeSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Code, ConnectError } from '@connectrpc/connect'
import { describe, expect, it } from 'vitest'
import { peerClient } from '../../peer/src/wire/peer-client.ts'
import { chunksOnDisk, partFiles, recordedButWrong, recordedChunks } from '../support/part-files.ts'
import { type CliResult, type PeerProcess, until } from '../support/peer-process.ts'
import { useTestNetwork } from '../support/test-network.ts'

/**
 * A source's shared file changes on its disk while the source is serving it. Sources serve at 1 MiB/s
 * so a 6 MiB transfer is still under way when the file changes.
 */
const MiB = 1024 * 1024
const content = randomBytes(6 * MiB)
const contentSha = createHash('sha256').update(content).digest('hex')
const NAME = 'lecture-notes.pdf'
// A bad chunk caught on arrival, or a refusal: the file changed, it shrank, or the source's rescan dropped it.
const CHANGED = /wrong hash|changed or vanished|shrank|no longer has the file/

// A lease no pause of a loaded machine outlasts; each test's peers log out when it ends.
const network = useTestNetwork({ directoryEnv: { LEASE_SECONDS: '30' }, logOutAfterEach: true })

const peer = (name: string, args: string[] = []) => network.peer(name, { args })

/** A peer sharing the content, serving at most `rate` bytes per second. */
async function source(name: string, rate = '1M', args: string[] = []) {
  const holder = await peer(name, ['--max-upload-rate', rate, ...args])
  await writeFile(join(holder.dir, NAME), content)
  await holder.waitFor(/published changes: \+1/)
  return holder
}

/** Starts `peer get` and resolves once at least one chunk is written on the downloader's disk. */
async function getUnderWay(fetcher: PeerProcess) {
  let ended: CliResult | undefined
  const get = fetcher.cli(['get', contentSha, '--json']).then((result) => {
    ended = result
    return result
  })
  await until(
    async () => ended !== undefined || chunksOnDisk(fetcher.dir, content, MiB).length > 0,
    'a first chunk on disk',
  )
  if (ended) throw new Error(`peer get ended before the change (${ended.code}): ${ended.stderr}`)
  return { get } // wrapped: an async function returning the promise itself would wait for it
}

/** Different bytes of the same size, written over the file in place (same inode, as `dd conv=notrunc`). */
function overwriteInPlace(path: string) {
  const fd = openSync(path, 'r+')
  writeSync(fd, randomBytes(content.length), 0, content.length, 0)
  closeSync(fd)
}

const droppedReason = (result: { dropped: { username: string; reason: string }[] }, username: string) =>
  result.dropped.find((d) => d.username === username)?.reason

/**
 * A download from two sources, one of which has its file changed mid-transfer by `change`. The victim
 * serves twice as fast as the honest source, so it always has chunks in flight when its file changes;
 * both slowly enough (6 MiB at 1.5 MiB/s) that a test process slow to see the first chunk on a loaded
 * machine still changes the file well before the end (at 3 MiB/s, once, the victim had nothing left).
 */
async function changedBesideAnHonestSource(prefix: string, change: (path: string) => void) {
  const victim = await source(`${prefix}-victim`, '1M')
  await source(`${prefix}-honest`, '512K')
  const fetcher = await peer(`${prefix}-fetcher`)
  const { get } = await getUnderWay(fetcher)
  change(join(victim.dir, NAME))
  const got = await get
  expect(got.code, got.stderr + victim.output() + fetcher.output()).toBe(0)
  const result = JSON.parse(got.stdout)
  expect(droppedReason(result, victim.name)).toMatch(CHANGED)
  expect(readFileSync(join(fetcher.dir, NAME)).equals(content)).toBe(true)
}

describe('a source’s file changing while it is being served', () => {
  it('overwritten in place, same size, sole source: exits 3 keeping only verified chunks, then resumes byte-identical', async () => {
    const victim = await source('ow-victim')
    const fetcher = await peer('ow-fetcher')
    const { get } = await getUnderWay(fetcher)
    overwriteInPlace(join(victim.dir, NAME))
    const got = await get
    expect(got.code, got.stderr + fetcher.output()).toBe(3)
    expect(got.stderr.trim().split('\n')).toHaveLength(1)
    expect(got.stderr).toMatch(/no live source can serve .*kept for resume.*ow-victim: /)
    expect(got.stderr).toMatch(CHANGED)
    expect(existsSync(join(fetcher.dir, NAME))).toBe(false)
    expect(partFiles(fetcher.dir)).toHaveLength(2)
    const kept = recordedChunks(fetcher.dir)
    expect(kept.length).toBeGreaterThan(0)
    expect(recordedButWrong(fetcher.dir, content, MiB)).toEqual([])

    const honest = await source('ow-honest', '64M')
    const again = await fetcher.cli(['get', contentSha, '--json'])
    expect(again.code, again.stderr).toBe(0)
    const result = JSON.parse(again.stdout)
    expect(result.resumedBytes).toBe(kept.length * MiB)
    expect(result.bytesPerSource[honest.name]).toBe(content.length - kept.length * MiB)
    expect(readFileSync(join(fetcher.dir, NAME)).equals(content)).toBe(true)
    expect(partFiles(fetcher.dir)).toEqual([])
  })

  it('overwritten in place beside an honest source: drops it and completes byte-identical', () =>
    changedBesideAnHonestSource('ow2', overwriteInPlace))

  it('truncated beside an honest source: drops it and completes byte-identical', () =>
    changedBesideAnHonestSource('cut', (path) => truncateSync(path, MiB / 2)))

  it('deleted beside an honest source: completes byte-identical, and the source refuses it from then on', async () => {
    const victim = await source('rm-victim', '2M', ['--open'])
    await source('rm-honest')
    const fetcher = await peer('rm-fetcher')
    const { get } = await getUnderWay(fetcher)
    rmSync(join(victim.dir, NAME))
    const got = await get
    expect(got.code, got.stderr).toBe(0)
    const result = JSON.parse(got.stdout)
    // An open file's bytes outlive its name, so what it still sends is the content: it served, and if it
    // was dropped, it was for refusing the file it no longer has, never for a bad chunk.
    expect(result.bytesPerSource[victim.name]).toBeGreaterThan(0)
    const reason = droppedReason(result, victim.name)
    expect(reason === undefined || !/wrong hash/.test(reason), reason).toBe(true)
    expect(readFileSync(join(fetcher.dir, NAME)).equals(content)).toBe(true)
    const refusal = await peerClient(victim)
      .getManifest({ sha256: contentSha })
      .then(() => undefined, ConnectError.from)
    expect([Code.NotFound, Code.FailedPrecondition]).toContain(refusal?.code)
  })
})
