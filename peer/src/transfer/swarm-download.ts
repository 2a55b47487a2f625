import { type FileHandle, mkdir, open, rename, rm, stat } from 'node:fs/promises'
import { Code, ConnectError } from '@connectrpc/connect'
import { DownloadClient } from '../rpc/download-client.ts'
import { peerClient } from '../rpc/transport.ts'
import { freeName } from './free-name.ts'
import { chunkCount, chunkLength, manifestHash, verifyChunk } from './manifest.ts'
import { partFileNames } from './part-file-names.ts'
import { PrefixHasher } from './prefix-hasher.ts'
import { ResumeRecord } from './resume-record.ts'

export type Source = { username: string; url: string }
export type Target = { name: string; size: number; sha256: string; chunkSize: number; manifest: string }

export type SourceReport = { username: string; url: string; bytes: number; dropped: string }
export type Progress = {
  doneBytes: number
  resumedBytes: number
  activeSources: number
  sources: SourceReport[]
}
export type Finished = Progress & { path: string; seconds: number; chunkHashes: Buffer[] }

/** Exit code 3 territory: nobody live can serve what is still missing. */
export class NoSourcesError extends Error {
  override readonly name = 'NoSourcesError'
}

type Options = {
  target: Target
  outDir: string
  /** The caller's directory token, presented to every source. */
  token: () => string | undefined
  /** Asks the directory again for live sources (when the known ones run out). */
  findSources: () => Promise<Source[]>
  initialSources: Source[]
  onProgress?: (progress: Progress) => void
  signal?: AbortSignal
  /** Requests in flight per source; more keeps a fast link busy. */
  perSource?: number
  /** A chunk request that makes no progress for this long drops its source. */
  stallMs?: number
}

/** Consecutive chunks asked for in one request: fewer, longer streams cost less per byte. */
const RUN_CHUNKS = 8

type SourceState = SourceReport & {
  client: ReturnType<typeof peerClient>
  /** The Download calls' own connection: bytes straight into chunk buffers. */
  link: DownloadClient
  inFlight: number
  /** Chunks this source is fetching now (endgame never asks one source twice for a chunk). */
  fetching: Set<number>
  alive: boolean
}

/**
 * Fetches one content from every live source at once. Chunks are handed out to sources as they free
 * up (so faster sources get more), several in flight per source; the last chunks go to more than one
 * source (endgame). Every chunk is checked against the manifest before it is written, the manifest
 * against the directory's hash, and the whole file against its sha256 before it is renamed into place.
 * An interrupted download keeps its verified chunks (a .part file and a record) for the next attempt.
 */
export async function swarmDownload(options: Options): Promise<Finished> {
  const { target, outDir } = options
  const started = performance.now()
  const chunks = chunkCount(target.size, target.chunkSize)
  const perSource = options.perSource ?? 4
  const stallMs = options.stallMs ?? 20_000
  const { temp, record: recordPath } = partFileNames(outDir, target)
  const meta = { sha256: target.sha256, size: target.size, chunkSize: target.chunkSize, chunks }

  const saved = (await exists(temp)) ? await ResumeRecord.load(recordPath, meta) : undefined
  const record = saved ?? new ResumeRecord(recordPath, meta)
  let handle: FileHandle
  try {
    await mkdir(outDir, { recursive: true })
    handle = await open(temp, saved ? 'r+' : 'w+')
  } catch (err) {
    throw new LocalWriteError(`cannot write ${temp}`, err)
  }
  if (!saved) {
    try {
      await handle.truncate(target.size)
      await record.save()
    } catch (err) {
      // No room for the file at all: leave nothing behind, say why.
      await handle.close().catch(() => {})
      await rm(temp, { force: true })
      await record.remove().catch(() => {})
      throw new LocalWriteError(`cannot write ${temp}`, err)
    }
  }
  const verifiedOnDisk = () =>
    Array.from({ length: chunks }, (_, i) => i)
      .filter((i) => record.has(i))
      .reduce((sum, i) => sum + chunkLength(i, target.size, target.chunkSize), 0)
  let resumedBytes = verifiedOnDisk()
  let wholeFile = new PrefixHasher(handle)
  let prefix = 0 // chunks [0, prefix) are verified and written
  const advancePrefix = () => {
    const before = prefix
    while (prefix < chunks && record.has(prefix)) prefix++
    if (prefix > before) wholeFile.advanceTo(Math.min(target.size, prefix * target.chunkSize))
  }

  const sources = new Map<string, SourceState>()
  const dropped = new Map<string, SourceState>()
  const addSources = (list: Source[]) => {
    for (const source of list) {
      if (sources.has(source.url) || dropped.has(source.url)) continue
      sources.set(source.url, {
        ...source,
        bytes: 0,
        dropped: '',
        client: peerClient(source.url),
        link: new DownloadClient(source.url),
        inFlight: 0,
        fetching: new Set(),
        alive: true,
      })
    }
  }
  addSources(options.initialSources)

  const headers = () => {
    const token = options.token()
    return token ? { authorization: `Bearer ${token}` } : undefined
  }
  const drop = (source: SourceState, why: string) => {
    if (!source.alive) return
    source.alive = false
    source.dropped = why
    sources.delete(source.url)
    dropped.set(source.url, source)
  }

  let doneBytes = resumedBytes
  const progress = (): Progress => ({
    doneBytes,
    resumedBytes,
    activeSources: sources.size,
    sources: [...sources.values(), ...dropped.values()].map(({ username, url, bytes, dropped: why }) => ({
      username,
      url,
      bytes,
      dropped: why,
    })),
  })

  try {
    const chunkHashes = await fetchManifest()
    if (saved) {
      await recheckSavedChunks(chunkHashes)
      resumedBytes = verifiedOnDisk()
      doneBytes = resumedBytes
    }
    advancePrefix()
    for (;;) {
      await runScheduler(chunkHashes)
      await saveProgress()
      if (await wholeFileMatches(chunkHashes)) break
    }
    await handle.close()
    const destination = await freeName(outDir, target.name)
    await rename(temp, destination)
    await record.remove()
    return { ...progress(), path: destination, seconds: (performance.now() - started) / 1000, chunkHashes }
  } catch (err) {
    await record.save().catch(() => {})
    await handle.close().catch(() => {})
    throw err
  } finally {
    for (const source of [...sources.values(), ...dropped.values()]) source.link.close()
  }

  /** The chunk hashes, from the first source whose manifest matches the directory's manifest hash. */
  async function fetchManifest(): Promise<Buffer[]> {
    for (;;) {
      for (const source of [...sources.values()]) {
        try {
          const m = await source.client.getManifest(
            { sha256: target.sha256 },
            { headers: headers(), timeoutMs: stallMs, signal: options.signal },
          )
          const hashes = m.chunkHashes.map((h) => Buffer.from(h))
          if (
            Number(m.size) !== target.size ||
            m.chunkSize !== target.chunkSize ||
            hashes.length !== chunks ||
            manifestHash(hashes) !== target.manifest
          ) {
            drop(source, 'sent a manifest that does not match the directory’s')
            continue
          }
          return hashes
        } catch (err) {
          if (options.signal?.aborted) throw err
          drop(source, describe(err))
        }
      }
      if (!(await refillSources())) throw new NoSourcesError(noSourcesMessage())
    }
  }

  /**
   * The record is saved without forcing the data to disk first (that would stall the transfer); a
   * kill loses nothing, since the kernel still holds the writes, but a power cut could. So chunks a
   * record calls verified are checked again before they are trusted. Returns how many were not.
   */
  async function recheckSavedChunks(chunkHashes: Buffer[]): Promise<number> {
    const buffer = Buffer.allocUnsafe(target.chunkSize)
    let bad = 0
    for (let index = 0; index < chunks; index++) {
      if (!record.has(index)) continue
      const length = chunkLength(index, target.size, target.chunkSize)
      const { bytesRead } = await handle.read(buffer, 0, length, index * target.chunkSize)
      if (bytesRead !== length || !verifyChunk(buffer.subarray(0, length), chunkHashes[index] as Buffer)) {
        record.unmark(index)
        bad++
      }
    }
    return bad
  }

  async function saveProgress() {
    try {
      await record.save()
    } catch (err) {
      throw new LocalWriteError(`cannot save progress beside ${temp}`, err)
    }
  }

  /** A write the kernel cuts short (a disk filling up) is carried on, so its real error surfaces. */
  async function writeWhole(data: Buffer, position: number) {
    for (let written = 0; written < data.length; ) {
      const { bytesWritten } = await handle.write(data, written, data.length - written, position + written)
      if (bytesWritten === 0) throw new Error('the disk took no more bytes')
      written += bytesWritten
    }
  }

  async function refillSources(): Promise<boolean> {
    try {
      addSources(await options.findSources())
    } catch {
      // the directory is unreachable: only the sources we still have can help
    }
    return sources.size > 0
  }

  function noSourcesMessage() {
    const missing = chunks - record.doneCount
    const why = [...dropped.values()].map((s) => `${s.username}: ${s.dropped}`).join('; ')
    return `no live source can serve ${target.name} (${missing} of ${chunks} chunks missing, kept for resume)${why ? ` — ${why}` : ''}`
  }

  async function runScheduler(chunkHashes: Buffer[]) {
    const queue: number[] = []
    for (let i = 0; i < chunks; i++) if (!record.has(i)) queue.push(i)
    const inFlight = new Map<number, number>() // chunk -> how many requests for it
    let lastSave = performance.now()
    let failure: unknown
    let refilling = false
    let lastRefill = performance.now()

    await new Promise<void>((resolve, reject) => {
      let settled = false
      const finish = (err?: unknown) => {
        if (settled) return
        settled = true
        if (err) reject(err)
        else resolve()
      }
      const onAbort = () => finish(options.signal?.reason ?? new Error('download cancelled'))
      options.signal?.addEventListener('abort', onAbort, { once: true })

      const pump = () => {
        if (settled) return
        if (record.complete) return finish()
        if (failure) return finish(failure)
        if (sources.size < 2 && !refilling && performance.now() - lastRefill > 5000) {
          // Running low: ask the directory for holders that appeared since (e.g. peers that just finished).
          lastRefill = performance.now()
          refilling = true
          void refillSources().finally(() => {
            refilling = false
            pump()
          })
        }
        for (const source of [...sources.values()]) {
          while (source.alive && source.inFlight < perSource) {
            const run = nextRun(source)
            if (run.length === 0) break
            void fetchRun(source, run)
          }
        }
        // A dropped source's requests still in flight may yet bring verified chunks: wait for them.
        const busy = [...sources.values(), ...dropped.values()].some((s) => s.inFlight > 0)
        if (!busy && !record.complete && !refilling) {
          // Everyone we knew is gone: ask the directory once more before giving up.
          refilling = true
          void refillSources().then((found) => {
            refilling = false
            if (!found) finish(new NoSourcesError(noSourcesMessage()))
            else pump()
          })
        }
      }

      /**
       * The next missing chunks nobody is fetching, up to RUN_CHUNKS consecutive ones (one request
       * streams them all), or in endgame one chunk that only one other source is fetching.
       */
      const nextRun = (source: SourceState): number[] => {
        const run: number[] = []
        // Near the end, shorter runs: what is left spreads over every source instead of a few long runs.
        const fairShare = Math.floor(queue.length / Math.max(1, sources.size * perSource))
        const runLength = Math.max(1, Math.min(RUN_CHUNKS, fairShare))
        while (queue.length > 0 && run.length < runLength) {
          const index = queue[0] as number
          if (record.has(index)) {
            queue.shift()
            continue
          }
          if (run.length > 0 && index !== (run.at(-1) as number) + 1) break
          run.push(queue.shift() as number)
        }
        if (run.length > 0 || sources.size < 2) return run
        for (const [index, count] of inFlight) {
          if (count === 1 && !record.has(index) && !source.fetching.has(index)) return [index]
        }
        return run
      }

      const fetchRun = async (source: SourceState, run: number[]) => {
        source.inFlight++
        for (const index of run) {
          source.fetching.add(index)
          inFlight.set(index, (inFlight.get(index) ?? 0) + 1)
        }
        try {
          for await (const { index, data } of readRun(source, run)) {
            if (record.has(index)) continue // an endgame twin won
            if (!verifyChunk(data, chunkHashes[index] as Buffer)) {
              drop(source, `sent chunk ${index} with the wrong hash (lying or corrupt peer)`)
              break
            }
            const length = data.length
            try {
              await writeWhole(data, index * target.chunkSize)
            } catch (err) {
              throw new LocalWriteError(`cannot write ${temp}`, err)
            }
            if (record.has(index)) continue
            record.mark(index)
            wholeFile.offer(index * target.chunkSize, data)
            advancePrefix()
            source.bytes += length
            doneBytes += length
            options.onProgress?.(progress())
            if (performance.now() - lastSave > 1000) {
              lastSave = performance.now()
              await saveProgress()
            }
          }
        } catch (err) {
          if (options.signal?.aborted) return
          if (err instanceof LocalWriteError) {
            // The disk, not the source, failed (full, read-only): stop, keep what is verified.
            failure = err
          } else {
            drop(source, describe(err))
          }
        } finally {
          // Whatever of the run did not arrive verified goes back to the front of the queue.
          const missing = run.filter((index) => !record.has(index) && (inFlight.get(index) ?? 1) <= 1)
          queue.unshift(...missing)
          source.inFlight--
          for (const index of run) {
            source.fetching.delete(index)
            const left = (inFlight.get(index) ?? 1) - 1
            if (left <= 0) inFlight.delete(index)
            else inFlight.set(index, left)
          }
          pump()
        }
      }

      pump()
    })
  }

  /**
   * Streams consecutive chunks in one request and yields each as soon as its bytes are complete, so
   * memory holds one chunk per request. A yielded chunk is only valid until the consumer asks for the
   * next. A request that makes no progress for stallMs is abandoned.
   */
  async function* readRun(
    source: SourceState,
    run: number[],
  ): AsyncGenerator<{ index: number; data: Buffer<ArrayBuffer> }> {
    const first = run[0] as number
    const offset = first * target.chunkSize
    const lengths = run.map((index) => chunkLength(index, target.size, target.chunkSize))
    const total = lengths.reduce((a, b) => a + b, 0)
    const stall = new AbortController()
    let timer = setTimeout(() => stall.abort(), stallMs)
    const signal = options.signal ? AbortSignal.any([options.signal, stall.signal]) : stall.signal
    let chunk = 0
    // One buffer per request, reused chunk after chunk: the consumer has verified and written a chunk
    // before it asks for the next one, so nothing still points into it.
    const storage = Buffer.allocUnsafe(target.chunkSize)
    let buffer = storage.subarray(0, lengths[0] as number)
    let filled = 0
    try {
      for await (const part of source.link.download(
        { sha256: target.sha256, offset, length: total },
        headers(),
        signal,
      )) {
        let data = part
        while (data.length > 0) {
          if (chunk >= run.length) throw new ConnectError('sent more bytes than asked for', Code.DataLoss)
          const take = Math.min(data.length, buffer.length - filled)
          buffer.set(data.subarray(0, take), filled)
          filled += take
          data = data.subarray(take)
          if (filled === buffer.length) {
            yield { index: run[chunk] as number, data: buffer }
            chunk++
            filled = 0
            if (chunk < run.length) buffer = storage.subarray(0, lengths[chunk] as number)
          }
        }
        clearTimeout(timer)
        timer = setTimeout(() => stall.abort(), stallMs)
      }
    } catch (err) {
      if (stall.signal.aborted && !options.signal?.aborted) throw new Error(`stalled for ${stallMs / 1000} s`)
      throw err
    } finally {
      clearTimeout(timer)
    }
    if (chunk !== run.length)
      throw new ConnectError(`sent too few bytes for chunk ${run[chunk]}`, Code.DataLoss)
  }

  /**
   * The whole file against its sha256. On a mismatch every chunk on disk is checked again: chunks the
   * disk lost are fetched anew (false when some were); if all still match their hashes, the published
   * manifest itself was false and nothing here can be trusted: start over next time.
   */
  async function wholeFileMatches(chunkHashes: Buffer[]): Promise<boolean> {
    const actual = await wholeFile.digest(target.size)
    if (actual === target.sha256) return true
    const lost = await recheckSavedChunks(chunkHashes)
    if (lost > 0) {
      doneBytes = verifiedOnDisk()
      wholeFile = new PrefixHasher(handle)
      prefix = 0
      advancePrefix()
      return false
    }
    await rm(temp, { force: true })
    await record.remove()
    throw new ConnectError(
      `the assembled file hashes to ${actual}, not ${target.sha256}; discarded`,
      Code.DataLoss,
    )
  }
}

/** The disk, not a source, failed (full, too small for the file, read-only): verified chunks stay. */
export class LocalWriteError extends Error {
  override readonly name = 'LocalWriteError'

  constructor(what: string, cause: unknown) {
    super(`${what}: ${cause instanceof Error ? cause.message : String(cause)}`)
  }
}

function describe(err: unknown): string {
  if (err instanceof ConnectError) {
    if (err.code === Code.Unavailable || err.code === Code.Canceled)
      return 'unreachable or went away mid-transfer'
    if (err.code === Code.Unauthenticated) return `refused our token (${err.rawMessage})`
    if (err.code === Code.NotFound) return 'no longer has the file'
    return `${Code[err.code]}: ${err.rawMessage}`
  }
  return err instanceof Error ? err.message : String(err)
}

async function exists(path: string) {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}
