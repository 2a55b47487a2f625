import { type FileHandle, mkdir, open, rm, stat } from 'node:fs/promises'
import type { FileEntry } from '../../../contract/api-types.ts'
import { moveToFreeName } from '../content/free-name.ts'
import { chunkCount, chunkLength } from '../content/manifest.ts'
import { FalseManifestError, LocalWriteError } from './download-errors.ts'
import { OffThreadHasher } from './off-thread-hasher.ts'
import { partFileNames } from './part-file-names.ts'
import { type DownloadHasher, PrefixHasher } from './prefix-hasher.ts'
import { ResumeRecord } from './resume-record.ts'

/** How often, at most, the record of verified chunks is saved while chunks arrive. */
const SAVE_EVERY_MS = 1000

/** From this size on, a download is hashed by a thread of its own (see OffThreadHasher). */
const OFF_THREAD_BYTES = 32 * 1024 * 1024

/**
 * The download on disk: a `.part` file of the full size and the record of which of its chunks are
 * verified, kept beside it so an interrupted download resumes. It hashes the whole file as the verified
 * prefix grows, checks it at the end, and moves it into place under a name that replaces nothing.
 */
export class PartFile {
  readonly target: FileEntry
  readonly chunks: number
  readonly resumed: boolean
  readonly #temp: string
  readonly #handle: FileHandle
  readonly #record: ResumeRecord
  #hasher: DownloadHasher
  #prefix = 0 // chunks [0, prefix) are verified and written
  #lastSave = performance.now()

  private constructor(
    target: FileEntry,
    temp: string,
    handle: FileHandle,
    record: ResumeRecord,
    resumed: boolean,
  ) {
    this.target = target
    this.chunks = record.chunks
    this.resumed = resumed
    this.#temp = temp
    this.#handle = handle
    this.#record = record
    this.#hasher = this.#newHasher()
  }

  /**
   * The part file of `target` in `outDir`: the one an earlier attempt left, or a new one of full size.
   * Open it only once a source's manifest has matched `target` (size, chunk size, chunk count and
   * manifest hash): the size and chunk count it is built from are then backed by real chunk hashes,
   * never just what the network claims.
   */
  static async open(outDir: string, target: FileEntry): Promise<PartFile> {
    const { temp, record: recordPath } = partFileNames(outDir, target)
    const meta = {
      sha256: target.sha256,
      size: target.size,
      chunkSize: target.chunkSize,
      chunks: chunkCount(target.size, target.chunkSize),
    }
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
    return new PartFile(target, temp, handle, record, saved !== undefined)
  }

  has(index: number): boolean {
    return this.#record.has(index)
  }

  /** Where the bytes are until `finish` moves them (a handle opened on it stays good after the move). */
  get path(): string {
    return this.#temp
  }

  /** Bytes of chunks the record calls verified. */
  verifiedBytes(): number {
    const last = this.chunks - 1
    const shortLast = last >= 0 && this.#record.has(last) ? this.target.chunkSize - this.#length(last) : 0
    return this.#record.doneCount * this.target.chunkSize - shortLast
  }

  missingChunks(): number {
    return this.chunks - this.#record.doneCount
  }

  /** Whether a chunk's bytes hash to `expected`: on the download's hashing thread, if it has one. */
  verify(data: Uint8Array, expected: Uint8Array): Promise<boolean> {
    return this.#hasher.verify(data, expected)
  }

  /** Writes a verified chunk and records it (the record reaches disk within a second or at the end). */
  async write(index: number, data: Buffer) {
    const position = index * this.target.chunkSize
    try {
      // A write the kernel cuts short (a disk filling up) is carried on, so its real error surfaces.
      for (let written = 0; written < data.length; ) {
        const { bytesWritten } = await this.#handle.write(
          data,
          written,
          data.length - written,
          position + written,
        )
        if (bytesWritten === 0) throw new Error('the disk took no more bytes')
        written += bytesWritten
      }
    } catch (err) {
      throw new LocalWriteError(`cannot write ${this.#temp}`, err)
    }
    this.#record.mark(index)
    this.#hasher.offer(position, data)
    this.#advancePrefix()
    if (performance.now() - this.#lastSave > SAVE_EVERY_MS) {
      this.#lastSave = performance.now()
      await this.save()
    }
  }

  async save() {
    try {
      await this.#record.save()
    } catch (err) {
      throw new LocalWriteError(`cannot save progress beside ${this.#temp}`, err)
    }
  }

  /**
   * The record is saved without forcing the data to disk first (that would stall the transfer); a
   * kill loses nothing, since the kernel still holds the writes, but a power cut could. So chunks a
   * record calls verified are checked again before they are trusted. Returns how many were not.
   */
  async recheck(chunkHashes: Buffer[]): Promise<number> {
    const buffer = Buffer.allocUnsafe(this.target.chunkSize)
    let bad = 0
    for (let index = 0; index < this.chunks; index++) {
      if (!this.#record.has(index)) continue
      const length = this.#length(index)
      const { bytesRead } = await this.#handle.read(buffer, 0, length, index * this.target.chunkSize)
      if (
        bytesRead !== length ||
        !(await this.#hasher.verify(buffer.subarray(0, length), chunkHashes[index] as Buffer))
      ) {
        this.#record.unmark(index)
        bad++
      }
    }
    if (bad > 0) {
      this.#hasher.close()
      this.#hasher = this.#newHasher()
      this.#prefix = 0
    }
    this.#advancePrefix()
    return bad
  }

  /**
   * The whole file against its sha256. On a mismatch every chunk on disk is checked again: chunks the
   * disk lost are fetched anew (false when some were); if all still match their hashes, the published
   * manifest itself was false and nothing here can be trusted: the part file is discarded.
   */
  async matches(chunkHashes: Buffer[]): Promise<boolean> {
    const actual = await this.#hasher.digest(this.target.size)
    if (actual === this.target.sha256) return true
    if ((await this.recheck(chunkHashes)) > 0) return false
    this.#hasher.close()
    await this.#handle.close().catch(() => {})
    await rm(this.#temp, { force: true })
    await this.#record.remove()
    throw new FalseManifestError(
      `the assembled file hashes to ${actual}, not ${this.target.sha256}; discarded`,
    )
  }

  /** Moves the verified file into `dir` under its name (or a free variant of it); returns its path. */
  async finish(dir: string): Promise<string> {
    this.#hasher.close()
    await this.#handle.close()
    const path = await moveToFreeName(this.#temp, dir, this.target.name)
    await this.#record.remove()
    return path
  }

  /** Removes the verified file instead of moving it into place (nobody wanted it kept); returns ''. */
  async discard(): Promise<string> {
    this.#hasher.close()
    await this.#handle.close()
    await rm(this.#temp, { force: true })
    await this.#record.remove()
    return ''
  }

  /** Stops here, keeping the verified chunks for the next attempt. */
  async keep() {
    this.#hasher.close()
    await this.#record.save().catch(() => {})
    await this.#handle.close().catch(() => {})
  }

  #newHasher(): DownloadHasher {
    if (this.target.size < OFF_THREAD_BYTES) return new PrefixHasher(this.#handle)
    return new OffThreadHasher(this.#temp)
  }

  #length(index: number) {
    return chunkLength(index, this.target.size, this.target.chunkSize)
  }

  #advancePrefix() {
    const before = this.#prefix
    while (this.#prefix < this.chunks && this.#record.has(this.#prefix)) this.#prefix++
    if (this.#prefix > before)
      this.#hasher.advanceTo(Math.min(this.target.size, this.#prefix * this.target.chunkSize))
  }
}

async function exists(path: string) {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}
