import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Code, ConnectError } from '@connectrpc/connect'
import { afterEach, describe, expect, it } from 'vitest'
import { chunkCount, chunkLength, manifestHash } from '../../peer/src/content/manifest.ts'
import type { Connect, SourceLink } from '../../peer/src/transfer/source-pool.ts'
import { Transfer } from '../../peer/src/transfer/transfer.ts'
import { type TransferEvent, TransferEventStream } from '../../peer/src/transfer/transfer-events.ts'
import type { Result } from '../../peer/src/wire/directory-client.ts'
import { relayedUrl } from '../../peer/src/wire/relay-protocol.ts'

const content = randomBytes(10 * 1024 + 300)
const sha256 = createHash('sha256').update(content).digest('hex')

const chunkHashesOf = (data: Buffer, chunkSize: number) =>
  Array.from({ length: chunkCount(data.length, chunkSize) }, (_, i) =>
    createHash('sha256')
      .update(data.subarray(i * chunkSize, i * chunkSize + chunkLength(i, data.length, chunkSize)))
      .digest(),
  )

/**
 * A holder in memory: it answers with the manifest of `data` (or of `vouches`) cut at `chunkSize`, and
 * serves `data`.
 */
type Holder = { data: Buffer; chunkSize: number; vouches?: Buffer }

/**
 * Sources by URL, each served from memory with no socket: what a Transfer reaches through `connect`.
 * Each download call is noted in `calls`, if given, as it is made.
 */
function memorySources(
  holders: Record<string, Holder>,
  calls: { offset: number; length: number; readerWaiting: boolean }[] = [],
): Connect {
  return ({ url }) => {
    const holder = holders[url]
    if (!holder) throw new Error(`no holder at ${url}`)
    const link: SourceLink = {
      manifest: async () => ({
        size: holder.data.length,
        chunkSize: holder.chunkSize,
        chunkHashes: chunkHashesOf(holder.vouches ?? holder.data, holder.chunkSize),
      }),
      async *download(call) {
        calls.push({ offset: call.offset, length: call.length, readerWaiting: call.readerWaiting ?? false })
        const step = call.segmentBytes ?? call.length
        for (let at = call.offset; at < call.offset + call.length; at += step)
          yield holder.data.subarray(at, Math.min(at + step, call.offset + call.length))
      },
      close: () => {},
    }
    return link
  }
}

const variantOf = (name: string, manifestOf: Holder, urls: string[]): Result => ({
  name,
  path: '',
  size: content.length,
  sha256,
  chunkSize: manifestOf.chunkSize,
  manifest: manifestHash(chunkHashesOf(manifestOf.data, manifestOf.chunkSize)),
  sourceCount: urls.length,
  sources: urls.map((url) => ({ username: new URL(url).hostname.split('.')[0] as string, url, key: null })),
})

/** An event as a short line (progress left out: it is checked on its own). */
function line(event: TransferEvent): string | undefined {
  switch (event.type) {
    case 'started':
      return `started ${event.variant.name}`
    case 'sourceTried':
      return `tried ${event.source.username}`
    case 'sourceDropped':
      return `dropped ${event.source.username}: ${event.why.replace(/ \(.*$/s, '')}`
    case 'chunkVerified':
      return `chunk ${event.index} from ${event.source.username}`
    case 'sourceQueued':
      return `queued at ${event.source.username}: ${event.place}`
    case 'progress':
      return undefined
    case 'finished':
      return `finished ${event.finished.variant.name}`
    case 'failed':
      return `failed: ${event.error instanceof Error ? event.error.message : String(event.error)}`
  }
}

const lines = (events: TransferEvent[]) => events.map(line).filter((l) => l !== undefined)

const chunkLines = (username: string, chunkSize: number) =>
  Array.from({ length: chunkCount(content.length, chunkSize) }, (_, i) => `chunk ${i} from ${username}`)

let dirs: string[] = []
afterEach(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  dirs = []
})

function start(variants: Result[], connect: Connect, self = 'me') {
  const outDir = mkdtempSync(join(tmpdir(), 'peerdir-transfer-'))
  dirs.push(outDir)
  const transfer = new Transfer({
    wanted: { sha256, variants },
    outDir,
    keep: true,
    self,
    connect: () => connect,
    findSources: async (variant) => variants.find((v) => v.name === variant.name)?.sources ?? [],
    // One request at a time per source: the chunks arrive in file order, so the events' order is certain.
    perSource: 1,
  })
  const events: TransferEvent[] = []
  const followed = (async () => {
    for await (const event of transfer.events(new AbortController().signal)) events.push(event)
  })()
  return { transfer, events, followed }
}

describe('a Transfer', () => {
  it('falls back to the next variant when one’s sources lie, and tells each step as an event', async () => {
    const forged = Buffer.from(content)
    forged[5000] = (forged[5000] as number) ^ 0xff
    const corrupt = Buffer.from(content)
    corrupt[10] = (corrupt[10] as number) ^ 0xff
    const connect = memorySources({
      // Its manifest is the one the variant lists, but its chunks do not make the sha256.
      'http://forger.test/': { data: forged, chunkSize: 1024 },
      // Vouches for the true manifest, then sends a chunk that does not match it.
      'http://corrupt.test/': { data: corrupt, chunkSize: 2048, vouches: content },
      'http://honest.test/': { data: content, chunkSize: 1024 },
    })
    const variants = [
      variantOf('forged', { data: forged, chunkSize: 1024 }, ['http://forger.test/']),
      variantOf('corrupted', { data: content, chunkSize: 2048 }, ['http://corrupt.test/']),
      variantOf('true', { data: content, chunkSize: 1024 }, ['http://honest.test/']),
    ]
    const { transfer, events, followed } = start(variants, connect)
    const finished = await transfer.done
    await followed
    transfer.close()

    expect(lines(events)).toEqual([
      'started forged',
      'tried forger',
      ...chunkLines('forger', 1024),
      'dropped forger: published a false manifest',
      'started corrupted',
      'tried corrupt',
      'dropped corrupt: sent chunk 0 with the wrong hash',
      'started true',
      'tried honest',
      ...chunkLines('honest', 1024),
      'finished true',
    ])
    expect(readFileSync(finished.path).equals(content)).toBe(true)
    expect(transfer.state).toBe('finished')
    // The last progress before the end counts every byte; the liars stay in the report, with why.
    const progress = events.filter((e) => e.type === 'progress').at(-1)
    expect(progress?.type === 'progress' && progress.progress.doneBytes).toBe(content.length)
    expect(finished.sources.map((s) => [s.username, s.dropped.replace(/ \(.*$/s, '')])).toEqual([
      ['honest', ''],
      ['forger', 'published a false manifest'],
      ['corrupt', 'sent chunk 0 with the wrong hash'],
    ])
  })

  it('fails with every variant’s reasons when none can be fetched verified', async () => {
    const forged = Buffer.from(content)
    forged[0] = (forged[0] as number) ^ 0xff
    const connect = memorySources({ 'http://forger.test/': { data: forged, chunkSize: 1024 } })
    const { transfer, events, followed } = start(
      [variantOf('forged', { data: forged, chunkSize: 1024 }, ['http://forger.test/'])],
      connect,
    )
    await expect(transfer.done).rejects.toThrow(/hashes to .*, not /)
    await followed
    transfer.close()
    expect(lines(events).at(-1)).toMatch(/^failed: no live source can serve forged/)
    expect(transfer.state).toBe('failed')
  })

  it('asks direct sources before relayed ones, and never itself', async () => {
    const relayed = relayedUrl('http://relay.test', 'far')
    const connect = memorySources({
      [relayed]: { data: content, chunkSize: 1024 },
      'http://near.test/': { data: content, chunkSize: 1024 },
      'http://me.test/': { data: content, chunkSize: 1024 },
    })
    const variant = variantOf('true', { data: content, chunkSize: 1024 }, [
      relayed,
      'http://me.test/',
      'http://near.test/',
    ])
    variant.sources = variant.sources.map((s) => (s.url === relayed ? { ...s, username: 'far' } : s))
    const { transfer, events, followed } = start([variant], connect, 'Me')
    await transfer.done
    await followed
    transfer.close()
    expect(lines(events).filter((line) => line.startsWith('tried'))).toEqual(['tried near', 'tried far'])
  })

  it('asks first for the chunk of a reader that came before the download began', async () => {
    const calls: { offset: number; length: number; readerWaiting: boolean }[] = []
    const connect = memorySources({ 'http://near.test/': { data: content, chunkSize: 1024 } }, calls)
    const variant = variantOf('true', { data: content, chunkSize: 1024 }, ['http://near.test/'])
    const { transfer, followed } = start([variant], connect)
    // The gateway's reader asks as the transfer starts, before any source sent the manifest.
    const read: Buffer[] = []
    for await (const piece of transfer.readers.read(7 * 1024, 8 * 1024, new AbortController().signal))
      read.push(piece)
    await transfer.done
    await followed
    transfer.close()
    expect(Buffer.concat(read).equals(content.subarray(7 * 1024, 8 * 1024))).toBe(true)
    // Not the run from chunk 0 the download plans when no reader is known.
    expect(calls[0]).toEqual({ offset: 7 * 1024, length: 1024, readerWaiting: true })
  })
})

describe('a Transfer with a reader and several sources', () => {
  const size = 256 * 1024
  const film = randomBytes(4 * size)
  const filmSha = createHash('sha256').update(film).digest('hex')
  const filmVariant = (urls: string[]): Result => ({
    ...variantOf('film', { data: film, chunkSize: size }, urls),
    size: film.length,
    sha256: filmSha,
  })

  it('cuts the chunk a reader waits on among its sources; once a liar’s part spoiled it, asks every chunk whole', async () => {
    // False in the half of chunk 0 the liar is asked for, true elsewhere: only whole chunks unmask it.
    const lying = Buffer.from(film)
    lying[size / 2] = (lying[size / 2] as number) ^ 0xff
    const calls: { offset: number; length: number; readerWaiting: boolean }[] = []
    const connect = memorySources(
      {
        'http://honest.test/': { data: film, chunkSize: size },
        'http://liar.test/': { data: lying, chunkSize: size, vouches: film },
      },
      calls,
    )
    const outDir = mkdtempSync(join(tmpdir(), 'peerdir-transfer-'))
    dirs.push(outDir)
    const transfer = new Transfer({
      wanted: { sha256: filmSha, variants: [filmVariant(['http://honest.test/', 'http://liar.test/'])] },
      outDir,
      keep: true,
      self: 'me',
      connect: () => connect,
      findSources: async () => [],
      perSource: 1,
    })
    const events: TransferEvent[] = []
    const followed = (async () => {
      for await (const event of transfer.events(new AbortController().signal)) events.push(event)
    })()
    const read: Buffer[] = []
    for await (const piece of transfer.readers.read(0, size, new AbortController().signal)) read.push(piece)
    const finished = await transfer.done
    await followed
    transfer.close()
    expect(Buffer.concat(read).equals(film.subarray(0, size))).toBe(true)
    expect(readFileSync(finished.path).equals(film)).toBe(true)
    // Chunk 0 went in halves, one to each source, flagged for the reader; then never in parts again
    // (cut again, it would fail again for as long as the liar lives: the reader would wait for ever).
    expect(calls.slice(0, 2)).toEqual([
      { offset: 0, length: size / 2, readerWaiting: true },
      { offset: size / 2, length: size / 2, readerWaiting: true },
    ])
    expect(calls.slice(2).filter((call) => call.length % size !== 0)).toEqual([])
    // Nobody could say whose half lied; the liar is dropped only if it was asked chunk 0 whole.
    for (const drop of lines(events).filter((l) => l.startsWith('dropped')))
      expect(drop).toBe('dropped liar: sent chunk 0 with the wrong hash')
  })
})

describe('a Transfer from a source behind NAT', () => {
  it('asks the source again through its relay when its punched link fails, instead of dropping it', async () => {
    const memory = memorySources({ 'http://alice.test/': { data: content, chunkSize: 1024 } })
    let calls = 0
    let fallBacks = 0
    // The second call dies with its punched link (a reset); the link falls back once, then serves on.
    const connect: Connect = (source) => {
      const link = memory(source)
      return {
        ...link,
        async *download(call, signal) {
          if (++calls === 2) throw new ConnectError('read ECONNRESET', Code.Unavailable)
          yield* link.download(call, signal)
        },
        fallBack: () => ++fallBacks === 1,
      }
    }
    const variant = variantOf('film', { data: content, chunkSize: 1024 }, ['http://alice.test/'])
    const { transfer, events, followed } = start([variant], connect)
    await transfer.done
    await followed
    transfer.close()
    expect(fallBacks).toBe(1)
    expect(lines(events).filter((line) => line.startsWith('dropped'))).toEqual([])
    expect(lines(events).at(-1)).toBe('finished film')
  })
})

describe('following a transfer’s events', () => {
  it('keeps only the latest progress and a bounded queue for a follower that does not read', async () => {
    const stream = new TransferEventStream()
    const variant = variantOf('true', { data: content, chunkSize: 1024 }, [])
    const progress = (doneBytes: number): TransferEvent => ({
      type: 'progress',
      progress: { doneBytes, resumedBytes: 0, activeSources: 1, sources: [], variant },
    })
    const events = stream.follow(progress(0), new AbortController().signal)
    const first = await events.next() // following from here on, reading nothing more until the end
    expect(first.value).toEqual(progress(0))
    const source = { username: 'a', url: 'http://a.test/', key: null }
    for (let index = 0; index < 5000; index++) {
      stream.emit({ type: 'chunkVerified', index, bytes: 1024, source })
      stream.emit(progress((index + 1) * 1024))
    }
    stream.emit({ type: 'failed', error: new Error('gone') })
    const rest: TransferEvent[] = []
    for await (const event of events) rest.push(event)
    expect(rest.length).toBeLessThanOrEqual(1024)
    expect(rest.filter((e) => e.type === 'progress')).toEqual([progress(5000 * 1024)])
    expect(rest.at(-1)?.type).toBe('failed')
    const chunks = rest.flatMap((e) => (e.type === 'chunkVerified' ? [e.index] : []))
    expect(chunks.at(-1)).toBe(4999) // the oldest went first
  })
})
