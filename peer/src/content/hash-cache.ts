import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

export type CachedHash = {
  size: number
  mtimeMs: number
  /** `<device>:<inode>`: a file moved within its disk keeps it, with its size and mtime (absent in old caches). */
  inode?: string
  sha256: string
  chunkSize: number
  chunkHashes: string[]
}

/**
 * Hashes keyed by path, trusted while size and mtime are unchanged, so restarting over a large
 * folder reads nothing again. A path it does not know is looked up by inode, size and mtime: a file
 * or folder moved or renamed within the disk is the same file, not one to read again. Saved
 * atomically (write then rename).
 */
export class HashCache {
  readonly #path: string
  #entries: Map<string, CachedHash>
  #inodes: Map<string, CachedHash> | undefined
  #dirty = false

  constructor(path: string) {
    this.#path = path
    this.#entries = new Map()
    try {
      const saved = JSON.parse(readFileSync(path, 'utf8')) as Record<string, CachedHash>
      this.#entries = new Map(Object.entries(saved))
    } catch {
      // no cache yet, or unreadable: everything gets hashed once
    }
  }

  get(path: string, size: number, mtimeMs: number, inode?: string): CachedHash | undefined {
    const same = (hit: CachedHash | undefined) => hit && hit.size === size && hit.mtimeMs === mtimeMs
    const hit = this.#entries.get(path)
    if (same(hit)) return hit
    if (inode === undefined) return undefined
    const moved = this.#byInode().get(inode)
    return moved && same(moved) && moved.inode === inode ? moved : undefined
  }

  set(path: string, entry: CachedHash) {
    const known = this.#entries.get(path)
    if (
      known &&
      known.size === entry.size &&
      known.mtimeMs === entry.mtimeMs &&
      known.inode === entry.inode &&
      known.sha256 === entry.sha256 &&
      known.chunkSize === entry.chunkSize
    )
      return
    this.#entries.set(path, entry)
    if (entry.inode !== undefined) this.#inodes?.set(entry.inode, entry)
    this.#dirty = true
  }

  /** The entries by inode, built on the first lookup that needs it and kept up to date after. */
  #byInode(): Map<string, CachedHash> {
    if (!this.#inodes) {
      this.#inodes = new Map()
      for (const entry of this.#entries.values())
        if (entry.inode !== undefined) this.#inodes.set(entry.inode, entry)
    }
    return this.#inodes
  }

  /** Forgets paths that no longer exist. */
  retain(paths: Set<string>) {
    for (const path of this.#entries.keys()) {
      if (!paths.has(path)) {
        const entry = this.#entries.get(path)
        this.#entries.delete(path)
        if (entry?.inode !== undefined && this.#inodes?.get(entry.inode) === entry)
          this.#inodes.delete(entry.inode)
        this.#dirty = true
      }
    }
  }

  save() {
    if (!this.#dirty) return
    mkdirSync(dirname(this.#path), { recursive: true, mode: 0o700 })
    const temp = `${this.#path}.tmp`
    writeFileSync(temp, JSON.stringify(Object.fromEntries(this.#entries)), { mode: 0o600 })
    renameSync(temp, this.#path)
    this.#dirty = false
  }
}
