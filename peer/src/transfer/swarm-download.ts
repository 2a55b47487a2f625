import type { FileEntry } from '../../../contract/api-types.ts'
import { chunkLength } from '../content/manifest.ts'
import { readChunks, STALL_MS } from './chunk-reader.ts'
import { type ChunkRequest, ChunkScheduler } from './chunk-scheduler.ts'
import {
  describeSourceFailure,
  FalseManifestError,
  LocalWriteError,
  NoSourcesError,
} from './download-errors.ts'
import { firstFittingManifest } from './manifest-probe.ts'
import { PartFile } from './part-file.ts'
import { type CallCredentials, peerLinks } from './peer-link.ts'
import { type Connect, type PooledSource, type Source, SourcePool, type SourceReport } from './source-pool.ts'

export type { CallCredentials, Source, SourceReport }
export type Progress = {
  doneBytes: number
  resumedBytes: number
  activeSources: number
  sources: SourceReport[]
}
export type Finished = Progress & { path: string; seconds: number; chunkHashes: Buffer[] }

type Options = {
  target: FileEntry
  outDir: string
  /** Each source's call token (unless `connect` is given). */
  credentials: CallCredentials
  /** How to reach a source; by default directly, over gRPC. */
  connect?: Connect
  /** Asks the directory again for live sources (when the known ones run out). */
  findSources: () => Promise<Source[]>
  initialSources: Source[]
  onProgress?: (progress: Progress) => void
  signal?: AbortSignal
  /** Requests in flight per source; more keeps a fast link busy. */
  perSource?: number
  /** A chunk request that makes no progress for this long drops its source. */
  stallMs?: number
  /** Readers of the download as it runs (peer cat, the gateway): what they wait for comes first. */
  readers?: DownloadReaders
}

/** What a download tells its readers, and asks of them. */
export type DownloadReaders = {
  /** The part file is open (again, for another attempt): which chunks it holds, where it is. */
  opened: (part: PartFile) => void
  /** A verified chunk is on disk. */
  written: (index: number) => void
  /** The chunks readers wait for, most urgent first (see ChunkScheduler). */
  positions: () => readonly number[]
  /** Calls `listener` when the positions move (a seek); returns how to stop. */
  onMove: (listener: () => void) => () => void
  /** True when nobody wants the file kept: the verified file is discarded instead of moved into place. */
  discard: () => boolean
}

/** Consecutive chunks asked for in one request: fewer, longer streams cost less per byte. */
const RUN_CHUNKS = 8
/** With fewer live sources than this, the directory is asked for more, at most every REFILL_MS. */
const FEW_SOURCES = 2
const REFILL_MS = 5000

/**
 * Fetches one content (one variant: its sha256 with the manifest, size and chunk size the directory
 * lists) from every live source at once and assembles it verified: the manifest against the variant
 * before anything is written or sized, every chunk against the manifest before it is written, the
 * whole file against its sha256 before it is moved into place. Which chunk goes to which source is
 * the ChunkScheduler's call; this joins it to the sources (SourcePool), the streams (readChunks) and
 * the disk (PartFile). An interrupted download keeps its verified chunks for the next attempt. A
 * variant nobody can serve verified ends in a NoSourcesError that names every source and why it was
 * dropped (the caller may try another variant).
 */
export async function swarmDownload(options: Options): Promise<Finished> {
  const { target, outDir } = options
  const started = performance.now()
  const stallMs = options.stallMs ?? STALL_MS
  const signal = options.signal ?? new AbortController().signal
  const pool = new SourcePool(
    options.connect ?? peerLinks({ credentials: options.credentials, timeoutMs: stallMs }),
  )
  pool.add(options.initialSources)
  let part: PartFile | undefined
  let resumedBytes = 0
  let doneBytes = 0
  const progress = (): Progress => ({
    doneBytes,
    resumedBytes,
    activeSources: pool.size,
    sources: pool.report(),
  })
  const refill = async (): Promise<boolean> => {
    try {
      pool.add(await options.findSources())
    } catch {
      // the directory is unreachable: only the sources we still have can help
    }
    return pool.size > 0
  }
  const noSources = () => {
    const why = pool.droppedReasons()
    const state = part
      ? `${part.missingChunks()} of ${part.chunks} chunks missing, kept for resume`
      : 'no source sent the manifest the directory lists'
    return new NoSourcesError(
      `no live source can serve ${target.name} (${state})${why ? ` — ${why}` : ''}`,
      pool.report(),
    )
  }

  try {
    const chunkHashes = await fetchManifest()
    part = await PartFile.open(outDir, target)
    resumedBytes = part.verifiedBytes()
    doneBytes = resumedBytes
    if (part.resumed) {
      await part.recheck(chunkHashes)
      resumedBytes = part.verifiedBytes()
      doneBytes = resumedBytes
    }
    // Only now: a resumed part's chunks are trusted once checked again.
    options.readers?.opened(part)
    for (;;) {
      await fetchMissing(part, chunkHashes)
      await part.save()
      try {
        if (await part.matches(chunkHashes)) break
      } catch (err) {
        if (!(err instanceof FalseManifestError)) throw err
        // Every chunk matched a manifest that does not make this sha256: whoever vouched for it lied.
        for (const source of pool.live()) pool.drop(source.url, `published a false manifest (${err.message})`)
        throw new NoSourcesError(`no live source can serve ${target.name}: ${err.message}`, pool.report())
      }
      doneBytes = part.verifiedBytes()
    }
    const path = options.readers?.discard() ? await part.discard() : await part.finish(outDir)
    return { ...progress(), path, seconds: (performance.now() - started) / 1000, chunkHashes }
  } catch (err) {
    await part?.keep()
    throw err
  } finally {
    pool.close()
  }

  /**
   * The chunk hashes, from the first source whose manifest matches the directory's manifest hash. A
   * source gets the stall timeout to send it, not a probe's short deadline: this is the download itself,
   * and a slow or relayed holder may be the only one.
   */
  async function fetchManifest(): Promise<Buffer[]> {
    for (;;) {
      const answer = await firstFittingManifest(pool.live(), target, signal, stallMs)
      if ('chunkHashes' in answer) return answer.chunkHashes
      for (const { source, why } of answer.failures) pool.drop(source.url, why)
      if (!(await refill())) throw noSources()
    }
  }

  /** One round: asks the sources for every chunk the part file lacks until all are written. */
  function fetchMissing(part: PartFile, chunkHashes: Buffer[]): Promise<void> {
    const scheduler = new ChunkScheduler({
      chunks: part.chunks,
      done: (index) => part.has(index),
      perSource: options.perSource ?? 4,
      runChunks: RUN_CHUNKS,
      readPositions: options.readers?.positions,
    })
    for (const source of pool.live()) scheduler.addSource(source.url)
    const drop = (source: PooledSource, why: string) => {
      if (pool.drop(source.url, why)) scheduler.dropSource(source.url)
    }
    const addFound = async () => {
      const found = await refill()
      for (const source of pool.live()) scheduler.addSource(source.url)
      return found
    }

    return new Promise<void>((resolve, reject) => {
      let settled = false
      let failure: unknown
      let refilling = false
      let lastRefill = performance.now()
      const finish = (err?: unknown) => {
        if (settled) return
        settled = true
        signal.removeEventListener('abort', onAbort)
        stopFollowingReaders?.()
        if (err) reject(err)
        else resolve()
      }
      const onAbort = () => finish(signal.reason ?? new Error('download cancelled'))
      signal.addEventListener('abort', onAbort, { once: true })
      // A seek is served now, not when a running request ends.
      const stopFollowingReaders = options.readers?.onMove(() => pump())
      const refillThen = (next: (found: boolean) => void) => {
        refilling = true
        lastRefill = performance.now()
        void addFound().then((found) => {
          refilling = false
          next(found)
        })
      }

      const pump = () => {
        if (settled) return
        if (scheduler.complete) return finish()
        if (failure) return finish(failure)
        if (pool.size < FEW_SOURCES && !refilling && performance.now() - lastRefill > REFILL_MS) {
          // Running low: ask the directory for holders that appeared since (e.g. peers that just finished).
          refillThen(pump)
        }
        for (const request of scheduler.plan()) void fetchRequest(request)
        // A dropped source's requests still in flight may yet bring verified chunks: wait for them.
        if (scheduler.openRequests === 0 && !refilling) {
          // Everyone we knew is gone: ask the directory once more before giving up.
          refillThen((found) => (found ? pump() : finish(noSources())))
        }
      }

      const fetchRequest = async (request: ChunkRequest) => {
        const source = pool.get(request.source) as PooledSource
        try {
          for await (const { index, data } of readChunks({
            open: (abort, arrived) =>
              source.link.download(
                {
                  sha256: target.sha256,
                  offset: (request.chunks[0] as number) * target.chunkSize,
                  length: request.chunks.reduce((sum, i) => sum + lengthOf(i), 0),
                  segmentBytes: target.chunkSize,
                  onBytes: arrived,
                },
                abort,
              ),
            chunks: request.chunks.map((i) => ({ index: i, length: lengthOf(i) })),
            stallMs,
            signal,
          })) {
            if (scheduler.isDone(index)) continue // an endgame twin won
            if (!(await part.verify(data, chunkHashes[index] as Buffer))) {
              drop(source, `sent chunk ${index} with the wrong hash (lying or corrupt peer)`)
              break
            }
            if (!scheduler.claim(index)) continue
            try {
              await part.write(index, data)
            } catch (err) {
              scheduler.unclaim(index)
              throw err
            }
            scheduler.written(index)
            options.readers?.written(index)
            source.bytes += data.length
            doneBytes += data.length
            options.onProgress?.(progress())
          }
        } catch (err) {
          if (signal.aborted) return
          // The disk, not the source, failed (full, read-only): stop, keep what is verified.
          if (err instanceof LocalWriteError) failure = err
          else drop(source, describeSourceFailure(err))
        } finally {
          scheduler.ended(request)
          pump()
        }
      }

      pump()
    })
  }

  function lengthOf(index: number) {
    return chunkLength(index, target.size, target.chunkSize)
  }
}
