import { stat } from 'node:fs/promises'
import { join } from 'node:path'

/** `name`, or `name (1)`, `name (2)`… so an upload or a download never replaces an existing file. */
export async function freeName(dir: string, name: string): Promise<string> {
  const dot = name.lastIndexOf('.')
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, '']
  for (let n = 0; ; n++) {
    const candidate = join(dir, n === 0 ? name : `${stem} (${n})${ext}`)
    try {
      await stat(candidate)
    } catch {
      return candidate
    }
  }
}
