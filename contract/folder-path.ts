// A FileEntry's `path`: the folder it lives in under the publisher's shared folder (FileEntry in contract/schemas.ts).

/** The most folders a path may hold, and its most UTF-8 bytes. */
export const MAX_PATH_SEGMENTS = 32
export const MAX_PATH_BYTES = 1024

const encoder = new TextEncoder()

/**
 * What is wrong with `path` as a folder path, or undefined: `""` is the top; else `/`-separated
 * segments, each checked by `segmentProblem` (the rules of a file name). Length and depth are checked
 * before anything is split, so a megabyte of path costs one byte count.
 */
export function folderPathProblem(
  path: string,
  segmentProblem: (segment: string) => string | undefined,
): string | undefined {
  if (path === '') return undefined
  if (path.length > MAX_PATH_BYTES || encoder.encode(path).length > MAX_PATH_BYTES) {
    return `must be at most ${MAX_PATH_BYTES} bytes in UTF-8`
  }
  if (path.startsWith('/')) return 'must be relative to the shared folder, not absolute (no leading /)'
  const segments = path.split('/')
  if (segments.length > MAX_PATH_SEGMENTS) return `must be at most ${MAX_PATH_SEGMENTS} folders deep`
  for (const segment of segments) {
    if (segment === '')
      return 'must be folder names joined by single / (none empty, no leading or trailing /)'
    const problem = segmentProblem(segment)
    if (problem) return `folder "${segment}" ${problem}`
  }
  return undefined
}

/** `path`'s folders, top first (none for the top). */
export const pathSegments = (path: string): string[] => (path === '' ? [] : path.split('/'))

/**
 * The paths strictly below `path` as a BINARY range scan, `from < p < to`: above `path/` and below
 * `path0` ('0' is the byte after '/'); for the top, every non-empty path (no upper bound).
 */
export function belowRange(path: string): { from: string; to: string | null } {
  return path === '' ? { from: '', to: null } : { from: `${path}/`, to: `${path}0` }
}
