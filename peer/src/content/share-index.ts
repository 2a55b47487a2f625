import { readdir, stat } from 'node:fs/promises'
import { basename, join, relative, sep } from 'node:path'
import type { FileEntry } from '../../../contract/api-types.ts'
import type { HashCache } from './hash-cache.ts'
import { hashFile, type Manifest, manifestHash } from './manifest.ts'

export type SharedFile = Manifest & { name: string; path: string; mtimeMs: number }
/** What the directory indexes of a shared file: its FileEntry, as the REST contract defines it. */
export type { FileEntry }

export const toEntry = (file: SharedFile): FileEntry => ({
  name: file.name,
  size: file.size,
  sha256: file.sha256,
  chunkSize: file.chunkSize,
  manifest: file.manifest,
})

/** Names the directory accepts (`FileName` in contract/schemas.ts); anything else in the folder is not shared. */
export const isShareableName = (name: string) =>
  name.length > 0 &&
  Buffer.byteLength(name) <= 255 &&
  name !== '.' &&
  name !== '..' &&
  ![...name].some((ch) => ch === '/' || ch === '\\' || (ch.codePointAt(0) ?? 0) < 0x20 || ch === '\u007f')

/** Partial downloads, resume records and dotfiles stay private. */
const isPrivate = (name: string) => name.startsWith('.')

export type ScanResult = { added: SharedFile[]; removed: SharedFile[]; hashed: number }

/**
 * The files this peer serves, by content hash. Built by walking the shared folder (recursively; the
 * index carries base names only), hashing only what the cache does not already know.
 */
export class ShareIndex {
  readonly root: string
  readonly #cache: HashCache
  #byHash = new Map<string, SharedFile>()
  /** Files shared from outside the folder (downloads with --out elsewhere). */
  readonly #extra = new Map<string, SharedFile>()
  #scanning: Promise<ScanResult> | undefined

  constructor(root: string, cache: HashCache) {
    this.root = root
    this.#cache = cache
  }

  get files(): SharedFile[] {
    return [...this.#byHash.values()]
  }

  get(sha256: string): SharedFile | undefined {
    return this.#byHash.get(sha256)
  }

  /**
   * Whether a file is still as it was hashed (same size and modification time): if not, its bytes may no
   * longer be that content, and it must not be served as it until it is hashed again.
   */
  async unchanged(file: SharedFile): Promise<boolean> {
    const info = await stat(file.path).catch(() => undefined)
    return info?.size === file.size && info.mtimeMs === file.mtimeMs
  }

  /** Rescans; concurrent callers share one scan. */
  scan(): Promise<ScanResult> {
    this.#scanning ??= this.#scan().finally(() => {
      this.#scanning = undefined
    })
    return this.#scanning
  }

  /** Adds a file that was just verified (a finished download) without rehashing it. */
  addVerified(file: SharedFile): ScanResult {
    if (!relative(this.root, file.path).startsWith('..')) {
      this.#cache.set(file.path, {
        size: file.size,
        mtimeMs: file.mtimeMs,
        sha256: file.sha256,
        chunkSize: file.chunkSize,
        chunkHashes: file.chunkHashes.map((h) => h.toString('hex')),
      })
      this.#cache.save()
    } else {
      this.#extra.set(file.path, file)
    }
    const existed = this.#byHash.has(file.sha256)
    this.#byHash.set(file.sha256, file)
    return { added: existed ? [] : [file], removed: [], hashed: 0 }
  }

  async #scan(): Promise<ScanResult> {
    const found = new Map<string, SharedFile>()
    const seenPaths = new Set<string>()
    let hashed = 0
    for await (const path of walk(this.root)) {
      const name = basename(path)
      if (isPrivate(name) || !isShareableName(name)) continue
      let info: Awaited<ReturnType<typeof stat>>
      try {
        info = await stat(path)
      } catch {
        continue
      }
      if (!info.isFile()) continue
      seenPaths.add(path)
      const cached = this.#cache.get(path, info.size, info.mtimeMs)
      let manifest: Manifest
      if (cached) {
        manifest = {
          size: cached.size,
          sha256: cached.sha256,
          chunkSize: cached.chunkSize,
          chunkHashes: cached.chunkHashes.map((h) => Buffer.from(h, 'hex')),
          manifest: '',
        }
        manifest.manifest = manifestHash(manifest.chunkHashes)
      } else {
        try {
          manifest = await hashFile(path)
        } catch {
          continue // vanished or unreadable while we looked
        }
        hashed++
        this.#cache.set(path, {
          size: manifest.size,
          mtimeMs: info.mtimeMs,
          sha256: manifest.sha256,
          chunkSize: manifest.chunkSize,
          chunkHashes: manifest.chunkHashes.map((h) => h.toString('hex')),
        })
      }
      if (!found.has(manifest.sha256))
        found.set(manifest.sha256, { ...manifest, name, path, mtimeMs: info.mtimeMs })
    }
    for (const [path, file] of this.#extra) {
      if (await this.unchanged(file)) {
        if (!found.has(file.sha256)) found.set(file.sha256, file)
      } else this.#extra.delete(path)
    }
    this.#cache.retain(seenPaths)
    this.#cache.save()
    const added = [...found.values()].filter((f) => !this.#byHash.has(f.sha256))
    const removed = [...this.#byHash.values()].filter((f) => !found.has(f.sha256))
    this.#byHash = found
    return { added, removed, hashed }
  }
}

async function* walk(dir: string): AsyncGenerator<string> {
  let entries: import('node:fs').Dirent[]
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch {
    return
  }
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue
    const path = join(dir, entry.name)
    if (entry.isDirectory()) yield* walk(path)
    else if (entry.isFile()) yield path
  }
}

export const insideRoot = (root: string, path: string) => {
  const rel = relative(root, path)
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..'
}
