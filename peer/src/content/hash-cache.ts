import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

export type CachedHash = {
  size: number
  mtimeMs: number
  sha256: string
  chunkSize: number
  chunkHashes: string[]
}

/**
 * Hashes keyed by path, trusted while size and mtime are unchanged, so restarting over a large
 * folder reads nothing again. Saved atomically (write then rename).
 */
export class HashCache {
  readonly #path: string
  #entries: Map<string, CachedHash>
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

  get(path: string, size: number, mtimeMs: number): CachedHash | undefined {
    const hit = this.#entries.get(path)
    return hit && hit.size === size && hit.mtimeMs === mtimeMs ? hit : undefined
  }

  set(path: string, entry: CachedHash) {
    this.#entries.set(path, entry)
    this.#dirty = true
  }

  /** Forgets paths that no longer exist. */
  retain(paths: Set<string>) {
    for (const path of this.#entries.keys()) {
      if (!paths.has(path)) {
        this.#entries.delete(path)
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
