import { link, rename, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * Moves `file` into `dir` as `name`, or `name (1)`, `name (2)`… so an upload or a download never
 * replaces an existing file, not even one that appears while we look: a hard link fails on a taken
 * name where a rename would overwrite it. Returns the path it took.
 */
export async function moveToFreeName(file: string, dir: string, name: string): Promise<string> {
  for (let n = 0; ; n++) {
    const candidate = join(dir, numberedName(name, n))
    try {
      await link(file, candidate)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EEXIST') continue
      if (!NO_HARD_LINKS.has(code ?? '')) throw err
      // A file system without hard links (FAT, some network mounts): look, then rename.
      if (await taken(candidate)) continue
      await rename(file, candidate)
      return candidate
    }
    // The file is in place under its new name; a temporary name left behind is only clutter.
    await unlink(file).catch(() => {})
    return candidate
  }
}

/** The longest file name most file systems take (NAME_MAX), in bytes of UTF-8. */
const NAME_MAX_BYTES = 255

/**
 * `name` for n = 0, else `stem (n).ext`, its stem cut at a code point so the whole fits NAME_MAX:
 * a 250-byte name saved twice must not fail with ENAMETOOLONG. An extension too long to keep beside
 * the suffix is no extension: the name is cut as a whole.
 */
export function numberedName(name: string, n: number): string {
  if (n === 0) return name
  const suffix = ` (${n})`
  const dot = name.lastIndexOf('.')
  let [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, '']
  if (utf8Bytes(ext) + suffix.length >= NAME_MAX_BYTES) [stem, ext] = [name, '']
  return `${cutToBytes(stem, NAME_MAX_BYTES - suffix.length - utf8Bytes(ext))}${suffix}${ext}`
}

const utf8Bytes = (text: string) => Buffer.byteLength(text)

function cutToBytes(text: string, bytes: number): string {
  if (utf8Bytes(text) <= bytes) return text
  let kept = ''
  let used = 0
  for (const codePoint of text) {
    used += utf8Bytes(codePoint)
    if (used > bytes) break
    kept += codePoint
  }
  return kept
}

const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'])

async function taken(path: string) {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}
