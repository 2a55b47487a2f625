import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HashCache } from '../../peer/src/content/hash-cache.ts'
import { ShareIndex } from '../../peer/src/content/share-index.ts'
import { downloadFastPath } from '../../peer/src/serve/download-fast-path.ts'
import { peerServiceRoutes } from '../../peer/src/serve/peer-service.ts'
import { DownloadClient } from '../../peer/src/wire/download-client.ts'
import { STREAM_WINDOW } from '../../peer/src/wire/flow-windows.ts'
import { type RpcServer, type ServerOptions, startRpcServer } from '../../peer/src/wire/transport.ts'
import { servingOptions } from '../support/serving-options.ts'

// The Download client hands on whole segments from buffers it recycles: against the fast path and
// Connect's own handler, each piece must be the bytes asked for and stay so until the next is asked for.
const SEGMENT = 256 * 1024
const content = randomBytes(9 * 1024 * 1024 + 17)
let sha = ''
const servers: RpcServer[] = []
const urls: Record<'fast' | 'connect', string> = { fast: '', connect: '' }

async function listen(options: ServerOptions): Promise<string> {
  const server = await startRpcServer({ ...options, port: 0, host: '127.0.0.1' })
  servers.push(server)
  return `http://127.0.0.1:${server.port}`
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'peerdir-download-client-'))
  writeFileSync(join(dir, 'content.bin'), content)
  const index = new ShareIndex(dir, new HashCache(join(dir, '.cache.json')))
  await index.scan()
  sha = index.files[0]?.sha256 ?? ''
  const service = servingOptions(index, dir, 'source')
  const routes = peerServiceRoutes(service)
  urls.connect = await listen({ interceptors: [], routes })
  urls.fast = await listen({
    interceptors: [],
    routes,
    fastPath: downloadFastPath({ service, verifyPeer: async () => 'caller' }),
  })
})
afterAll(() => Promise.all(servers.map((server) => server.stop())))

/**
 * Every piece of one call, checked against the content while it is held (after `hold`, during which the
 * client lands the next bytes): the lengths of the pieces, or the first mismatch.
 */
async function piecesOf(
  client: DownloadClient,
  offset: number,
  length: number,
  hold: () => Promise<unknown>,
): Promise<number[]> {
  const lengths: number[] = []
  let at = offset
  for await (const piece of client.download(
    { sha256: sha, offset, length, segmentBytes: SEGMENT },
    undefined,
    new AbortController().signal,
  )) {
    const digest = createHash('sha256').update(piece).digest('hex')
    await hold()
    const expected = content.subarray(at, at + piece.length)
    if (createHash('sha256').update(piece).digest('hex') !== digest || !piece.equals(expected))
      throw new Error(`the piece at ${at} changed or is wrong`)
    at += piece.length
    lengths.push(piece.length)
  }
  expect(at).toBe(offset + length)
  return lengths
}

describe.each(['fast', 'connect'] as const)('DownloadClient against %s', (server) => {
  it('hands on whole segments counted from the offset, the last one shorter', async () => {
    const client = new DownloadClient(urls[server])
    try {
      const length = 5 * SEGMENT + 1234
      const lengths = await piecesOf(client, 77, length, async () => {})
      expect(lengths).toEqual([SEGMENT, SEGMENT, SEGMENT, SEGMENT, SEGMENT, 1234])
    } finally {
      client.close()
    }
  })

  it('says bytes arrived before their segment is whole, so a slow source is not taken for a silent one', async () => {
    const client = new DownloadClient(urls[server])
    try {
      let arrivals = 0
      let bytes = 0
      const seen: number[] = []
      for await (const piece of client.download(
        {
          sha256: sha,
          offset: 0,
          length: 2 * 1024 * 1024,
          segmentBytes: 1024 * 1024,
          onBytes: (n) => {
            arrivals++
            bytes += n
          },
        },
        undefined,
        new AbortController().signal,
      )) {
        expect(piece.length).toBe(1024 * 1024)
        seen.push(arrivals)
      }
      // A source's DATA frames are at most 256 KiB: at least four arrivals before each 1 MiB segment.
      expect(seen[0]).toBeGreaterThanOrEqual(4)
      expect((seen[1] ?? 0) - (seen[0] ?? 0)).toBeGreaterThanOrEqual(4)
      expect(bytes).toBe(2 * 1024 * 1024)
    } finally {
      client.close()
    }
  })

  it('hands a chunk larger than its window allows on in pieces, never waiting on a window it cannot reopen', async () => {
    const client = new DownloadClient(urls[server])
    try {
      // 8 MiB segments in a 4 MiB window: whole, none could ever be handed on (and so let go).
      const pieces: Buffer[] = []
      for await (const piece of client.download(
        { sha256: sha, offset: 0, length: content.length, segmentBytes: 8 * 1024 * 1024 },
        undefined,
        new AbortController().signal,
      )) {
        expect(piece.length).toBeLessThanOrEqual(STREAM_WINDOW / 4)
        pieces.push(Buffer.from(piece))
      }
      expect(Buffer.concat(pieces).equals(content)).toBe(true)
    } finally {
      client.close()
    }
  })

  it('keeps a held piece intact while its call waits and its buffers are shared by other calls', async () => {
    const client = new DownloadClient(urls[server])
    try {
      // A slow consumer: other buffers fill up to the call's window, the rest waits until a piece is let go.
      const calls = [0, 1, 2, 3].map((i) =>
        piecesOf(client, i * 250_001, 2 * 1024 * 1024, () => sleep(i % 2 === 0 ? 5 : 0)),
      )
      for (const lengths of await Promise.all(calls))
        expect(lengths.slice(0, 8)).toEqual(Array(8).fill(SEGMENT))
    } finally {
      client.close()
    }
  })
})

describe('DownloadClient against a port that never speaks', () => {
  it.each(['http', 'https'])(
    'ends a call over %s at its signal, though the connection never came up',
    async (scheme) => {
      // Accepts connections and says nothing: no HTTP/2 preface, no TLS handshake (a port taken over by
      // something else after a peer died, or a peer that hangs).
      const silent = net.createServer(() => {})
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
      const { port } = silent.address() as net.AddressInfo
      try {
        const target =
          scheme === 'https'
            ? { url: `https://127.0.0.1:${port}`, key: 'sha256/none' }
            : `http://127.0.0.1:${port}`
        const client = new DownloadClient(target)
        const abort = new AbortController()
        const call = (async () => {
          for await (const _ of client.download(
            { sha256: 'a'.repeat(64), offset: 0, length: 1 },
            undefined,
            abort.signal,
          )) {
          }
        })()
        await sleep(300)
        abort.abort()
        const ended = await Promise.race([
          call.then(
            () => 'ended',
            (err: Error) => err.message,
          ),
          sleep(5000).then(() => 'still waiting'),
        ])
        expect(ended).toMatch(/the download was cancelled$/)
        client.close()
      } finally {
        silent.close()
      }
    },
  )
})
