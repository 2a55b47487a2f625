import { readdir, stat } from 'node:fs/promises'
import { basename, dirname, join, relative, sep } from 'node:path'
import type { FileEntry as ContractFileEntry } from '../../../contract/api-types.ts'
import type { HashCache } from './hash-cache.ts'
import { hashFile, type Manifest, manifestHash } from './manifest.ts'
import { isShareableName, pathProblem } from './safe-path.ts'

/** A verified file on this disk (`path`), as a finished download or upload hands it over. */
export type SharedFile = Manifest & { name: string; path: string; mtimeMs: number }
/** A shared file with the folder it is published under (`folder`, `/`-separated, `""` at the top). */
export type IndexedFile = SharedFile & { folder: string }
/** What the directory indexes of a shared file: its FileEntry, `path` its folder under the shared folder. */
export type FileEntry = ContractFileEntry & { path: string }

export const toEntry = (file: IndexedFile): FileEntry => ({
  name: file.name,
  path: file.folder,
  size: file.size,
  sha256: file.sha256,
  chunkSize: file.chunkSize,
  manifest: file.manifest,
})

export { isShareableName }

/** Partial downloads, resume records and dotfiles (and dot-folders) stay private. */
const isPrivate = (name: string) => name.startsWith('.')

/**
 * The folder a file at `path` is published under, relative to `root` and `/`-separated; undefined when
 * it is outside root or the directory would refuse it (too deep, a name it takes for no file name).
 */
export function folderOf(root: string, path: string): string | undefined {
  const rel = relative(root, dirname(path))
  if (rel.startsWith('..') || rel.startsWith(sep)) return undefined
  const folder = rel.split(sep).join('/')
  return pathProblem(folder) === undefined ? folder : undefined
}

/**
 * What a scan changed: contents new to the index, contents gone, and contents still shared whose
 * folder or name changed (a moved or renamed file or folder: the same hash, republished, never rehashed).
 */
export type ScanResult = {
  added: IndexedFile[]
  removed: IndexedFile[]
  moved: IndexedFile[]
  hashed: number
}

/**
 * The files this peer serves, by content hash, each with the folder it is published under. Built by
 * walking the shared folder (recursively, in name order), hashing only what the cache does not already
 * know. One content found at several places is published at one of them: where it was published
 * before, while it is still there, else the first in name order.
 */
export class ShareIndex {
  readonly root: string
  readonly #cache: HashCache
  #byHash = new Map<string, IndexedFile>()
  /** Files shared from outside the folder (downloads with --out elsewhere), published at the top. */
  readonly #extra = new Map<string, IndexedFile>()
  #scanning: Promise<ScanResult> | undefined
  #cacheSave: NodeJS.Timeout | undefined

  constructor(root: string, cache: HashCache) {
    this.root = root
    this.#cache = cache
  }

  get files(): IndexedFile[] {
    return [...this.#byHash.values()]
  }

  get(sha256: string): IndexedFile | undefined {
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
  addVerified(verified: SharedFile): ScanResult {
    const folder = folderOf(this.root, verified.path)
    const file: IndexedFile = { ...verified, folder: folder ?? '' }
    if (folder !== undefined) {
      this.#cache.set(file.path, {
        size: file.size,
        mtimeMs: file.mtimeMs,
        sha256: file.sha256,
        chunkSize: file.chunkSize,
        chunkHashes: file.chunkHashes.map((h) => h.toString('hex')),
      })
      this.#saveCacheSoon()
    } else {
      this.#extra.set(file.path, file)
    }
    const existed = this.#byHash.get(file.sha256)
    // Already shared from elsewhere: that place stays the one published.
    if (existed) return { added: [], removed: [], moved: [], hashed: 0 }
    this.#byHash.set(file.sha256, file)
    return { added: [file], removed: [], moved: [], hashed: 0 }
  }

  /**
   * The cache written once for a burst of verified files (a folder get brings hundreds), not once per
   * file: it holds every shared file's chunk hashes, megabytes for a large share. A failed write costs
   * only a rehash after a restart.
   */
  #saveCacheSoon() {
    this.#cacheSave ??= setTimeout(() => {
      this.#cacheSave = undefined
      try {
        this.#cache.save()
      } catch {}
    }, 1000).unref()
  }

  async #scan(): Promise<ScanResult> {
    const found = new Map<string, IndexedFile>()
    const seenPaths = new Set<string>()
    let hashed = 0
    for await (const { path, folder } of walk(this.root, '')) {
      const name = basename(path)
      if (!isShareableName(name)) continue
      let info: Awaited<ReturnType<typeof stat>>
      try {
        info = await stat(path)
      } catch {
        continue
      }
      if (!info.isFile()) continue
      seenPaths.add(path)
      const inode = `${info.dev}:${info.ino}`
      const cached = this.#cache.get(path, info.size, info.mtimeMs, inode)
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
      }
      // Set again on a hit too: a file found under a new path (moved) is cached under it from now on.
      this.#cache.set(path, {
        size: manifest.size,
        mtimeMs: info.mtimeMs,
        inode,
        sha256: manifest.sha256,
        chunkSize: manifest.chunkSize,
        chunkHashes: manifest.chunkHashes.map((h) => h.toString('hex')),
      })
      const file = { ...manifest, name, path, folder, mtimeMs: info.mtimeMs }
      const first = found.get(manifest.sha256)
      if (!first || (path === this.#byHash.get(manifest.sha256)?.path && first.path !== path))
        found.set(manifest.sha256, file)
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
    const moved = [...found.values()].filter((f) => {
      const before = this.#byHash.get(f.sha256)
      return before !== undefined && (before.folder !== f.folder || before.name !== f.name)
    })
    this.#byHash = found
    return { added, removed, moved, hashed }
  }
}

/** Every file under `dir` with the folder it is in, in name order; hidden files and folders left out. */
async function* walk(dir: string, folder: string): AsyncGenerator<{ path: string; folder: string }> {
  let entries: import('node:fs').Dirent[]
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch {
    return
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  for (const entry of entries) {
    if (isPrivate(entry.name)) continue
    const path = join(dir, entry.name)
    if (entry.isDirectory()) {
      const inner = folder ? `${folder}/${entry.name}` : entry.name
      // A folder the directory would refuse (a name it takes for no file name, too deep) is not shared.
      if (pathProblem(inner) === undefined) yield* walk(path, inner)
    } else if (entry.isFile()) yield { path, folder }
  }
}

export const insideRoot = (root: string, path: string) => {
  const rel = relative(root, path)
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..'
}
