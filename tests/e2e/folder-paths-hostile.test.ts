import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'
import { startLyingDirectory } from '../support/lying-directory.ts'
import { placeFile } from '../support/peer-process.ts'
import { useTestNetwork } from '../support/test-network.ts'

const network = useTestNetwork({ logOutAfterEach: true })
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

/** Every file and folder under `dir`, relative to it, sorted. */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort()
}

describe('a lying directory lists hostile paths', () => {
  it('never makes a folder get write outside --out: each hostile entry refused, the honest one fetched', async () => {
    const honest = randomBytes(200_000)
    const bait = randomBytes(300_000)
    const holder = await network.peer('holder')
    placeFile(holder.dir, 'ok.txt', honest)
    await holder.waitFor(/published changes: \+1/)
    placeFile(holder.dir, 'bait.bin', bait)
    await holder.waitFor(/published changes: \+1/)
    const entry = (path: string, name: string, content = bait) => ({
      name,
      path,
      size: content.length,
      sha256: sha(content),
      chunkSize: 1024 * 1024,
      manifest: '', // not read: the download asks the directory by hash
    })
    const base = mkdtempSync(join(tmpdir(), 'hostile-'))
    const out = join(base, 'out')
    mkdirSync(out)
    const hostile = [
      entry('Album/../../..', 'escaped-parent'),
      entry('Album', '../../escaped-name'),
      entry('Album', '..'),
      entry(`${base}/Album`, 'escaped-absolute'),
      entry(base, 'escaped-absolute-base'),
      entry('Album/a\\..\\..', 'escaped-backslash'),
      entry('Album//x', 'empty-segment'),
      entry('Album/x\u0000y', 'nul'),
      entry(`Album/${Array.from({ length: 10_000 }, () => 'd').join('/')}`, 'deep'),
      entry(`Album/${'y'.repeat(1_000_000)}`, 'long'),
      entry('Album', 'ok.txt'), // the same place twice: the second is refused
    ]
    const liar = await startLyingDirectory(network.directoryUrl, (asked) =>
      asked.username === 'holder'
        ? {
            username: 'holder',
            state: 'up',
            path: asked.path,
            folders: [],
            files: [entry('Album', 'ok.txt', honest), ...hostile],
          }
        : undefined,
    )
    network.track({ stop: () => liar.close() })
    const fetcher = await network.peer('fetcher', { directoryUrl: liar.url })
    const got = await fetcher.cli(['get', 'holder/Album', '--out', out, '--json'])
    expect(got.code, got.stderr).toBe(1)
    expect(liar.browsed.length).toBeGreaterThan(0)
    const result = JSON.parse(got.stdout)
    const outcomes = Object.fromEntries(
      result.files.map((f: { name: string; outcome: string }) => [f.name, f.outcome]),
    )
    expect(result.files).toHaveLength(hostile.length + 1)
    expect(result.files[0]).toMatchObject({ name: 'ok.txt', outcome: 'verified' })
    for (const f of result.files.slice(1)) expect(f.outcome, `${f.name}: ${f.error}`).toBe('refused')
    expect(outcomes['escaped-parent']).toBe('refused')
    // Only the honest file, where its folder says; nothing beside --out, nothing anywhere else.
    expect(tree(base)).toEqual(['out', 'out/Album', 'out/Album/ok.txt'])
    expect(readFileSync(join(out, 'Album', 'ok.txt')).equals(honest)).toBe(true)
    const everywhere = readdirSync(tmpdir(), { recursive: true, encoding: 'utf8' })
    expect(everywhere.filter((p) => /escaped/.test(p)).map((p) => relative(tmpdir(), p))).toEqual([])
  })

  it('refuses a peer path that climbs out as bad usage, before asking anyone', async () => {
    const fetcher = await network.peer('climber')
    const got = await fetcher.cli(['get', 'holder/../../etc', '--json'])
    expect(got.code, got.stderr).toBe(2)
    expect(got.stderr).toMatch(/"\.\."/)
  })
})
