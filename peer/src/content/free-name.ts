import { link, rename, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * Moves `file` into `dir` as `name`, or `name (1)`, `name (2)`… so an upload or a download never
 * replaces an existing file, not even one that appears while we look: a hard link fails on a taken
 * name where a rename would overwrite it. Returns the path it took.
 */
export async function moveToFreeName(file: string, dir: string, name: string): Promise<string> {
  const dot = name.lastIndexOf('.')
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, '']
  for (let n = 0; ; n++) {
    const candidate = join(dir, n === 0 ? name : `${stem} (${n})${ext}`)
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

const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'])

async function taken(path: string) {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}
