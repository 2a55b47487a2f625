import { open, readFile, rename, rm, writeFile } from 'node:fs/promises'

/** Which chunks of a partial download are verified on disk, saved beside the temporary file. */
export class ResumeRecord {
  readonly path: string
  readonly sha256: string
  readonly size: number
  readonly chunkSize: number
  readonly chunks: number
  readonly #done: Uint8Array
  #count = 0
  #saving: Promise<void> = Promise.resolve()
  #removed = false

  constructor(
    path: string,
    meta: { sha256: string; size: number; chunkSize: number; chunks: number },
    done?: Uint8Array,
  ) {
    this.path = path
    this.sha256 = meta.sha256
    this.size = meta.size
    this.chunkSize = meta.chunkSize
    this.chunks = meta.chunks
    this.#done = done ?? new Uint8Array(Math.ceil(meta.chunks / 8))
    for (let i = 0; i < meta.chunks; i++) if (this.has(i)) this.#count++
  }

  /** The saved record if it describes this very content; otherwise undefined (start over). */
  static async load(
    path: string,
    meta: { sha256: string; size: number; chunkSize: number; chunks: number },
  ): Promise<ResumeRecord | undefined> {
    try {
      const saved = JSON.parse(await readFile(path, 'utf8')) as {
        sha256: string
        size: number
        chunkSize: number
        done: string
      }
      if (saved.sha256 !== meta.sha256 || saved.size !== meta.size || saved.chunkSize !== meta.chunkSize)
        return undefined
      const done = Buffer.from(saved.done, 'base64')
      if (done.length !== Math.ceil(meta.chunks / 8)) return undefined
      return new ResumeRecord(path, meta, new Uint8Array(done))
    } catch {
      return undefined
    }
  }

  has(index: number): boolean {
    return ((this.#done[index >> 3] ?? 0) & (1 << (index & 7))) !== 0
  }

  mark(index: number) {
    if (this.has(index)) return
    this.#done[index >> 3] = (this.#done[index >> 3] ?? 0) | (1 << (index & 7))
    this.#count++
  }

  unmark(index: number) {
    if (!this.has(index)) return
    this.#done[index >> 3] = (this.#done[index >> 3] ?? 0) & ~(1 << (index & 7))
    this.#count--
  }

  get doneCount(): number {
    return this.#count
  }

  get complete(): boolean {
    return this.#count === this.chunks
  }

  /** Written to a temporary name and renamed, so a crash never leaves a half-written record; saves queue up. */
  save(): Promise<void> {
    this.#saving = this.#saving.catch(() => {}).then(() => (this.#removed ? undefined : this.#write()))
    return this.#saving
  }

  async #write() {
    const body = JSON.stringify({
      sha256: this.sha256,
      size: this.size,
      chunkSize: this.chunkSize,
      done: Buffer.from(this.#done).toString('base64'),
    })
    try {
      await writeFile(`${this.path}.tmp`, body)
      await rename(`${this.path}.tmp`, this.path)
    } catch (err) {
      if (!isOutOfSpace(err)) throw err
      // A full disk has no room for a second copy, which is exactly when progress must not be lost:
      // the record keeps its length, so it is rewritten in place in the space it already holds. A torn
      // write at worst loses the record (start over); chunks it names are verified again on resume.
      await rm(`${this.path}.tmp`, { force: true })
      const handle = await open(this.path, 'r+')
      try {
        const { size } = await handle.stat()
        if (size !== Buffer.byteLength(body)) throw err
        await handle.write(body, 0)
      } finally {
        await handle.close()
      }
    }
  }

  /** Gone for good: after the saves already queued (which would write it back), and no more saves. */
  async remove() {
    this.#removed = true
    await this.#saving.catch(() => {})
    await rm(this.path, { force: true })
    await rm(`${this.path}.tmp`, { force: true })
  }
}

const isOutOfSpace = (err: unknown) =>
  err instanceof Error && ['ENOSPC', 'EDQUOT', 'EFBIG'].includes((err as NodeJS.ErrnoException).code ?? '')
