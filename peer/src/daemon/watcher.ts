import { type FSWatcher, watch } from 'node:fs'
import { basename } from 'node:path'

/**
 * Calls `onChange` once things settle after files in `dir` (recursively) change. Hidden files
 * (partial downloads, their resume records) are ignored so a running download does not cause rescans.
 */
export function watchFolder(dir: string, onChange: () => void, settleMs = 400): { close: () => void } {
  let timer: NodeJS.Timeout | undefined
  let watcher: FSWatcher | undefined
  try {
    watcher = watch(dir, { recursive: true }, (_event, file) => {
      if (file && basename(String(file)).startsWith('.')) return
      clearTimeout(timer)
      timer = setTimeout(onChange, settleMs)
    })
    watcher.on('error', () => {
      // The folder went away or hit a watch limit; explicit `peer index` still works.
    })
  } catch {
    // Platforms without recursive watching: `peer index` republishes on demand.
  }
  return {
    close: () => {
      clearTimeout(timer)
      watcher?.close()
    },
  }
}
