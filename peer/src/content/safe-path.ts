import { join, relative, resolve, sep } from 'node:path'
import {
  folderPathProblem,
  MAX_PATH_BYTES,
  MAX_PATH_SEGMENTS,
  pathSegments,
} from '../../../contract/folder-path.ts'

/**
 * The rules of a FileEntry's `name` and its folder `path` (contract/schemas.ts, contract/folder-path.ts),
 * and the one place that turns a path and a name from the network into a file under a folder of ours,
 * or refuses them. What this module refuses never reaches the disk; what it accepts cannot leave that
 * folder (no `..`, no absolute path, no separator but `/`). It does no I/O: a symbolic link the local
 * user put under the folder is theirs to follow.
 */

export const MAX_NAME_BYTES = 255
export { MAX_PATH_BYTES, MAX_PATH_SEGMENTS }

const isControl = (codePoint: number) => codePoint < 0x20 || codePoint === 0x7f

/** Why `name` cannot be a file name (or one folder of a path), or undefined when it can. */
export function nameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty'
  if (name.length > MAX_NAME_BYTES || Buffer.byteLength(name) > MAX_NAME_BYTES)
    return `is longer than ${MAX_NAME_BYTES} bytes`
  if (name === '.' || name === '..') return `is "${name}"`
  for (const ch of name) {
    if (ch === '/' || ch === '\\') return 'contains / or \\'
    if (isControl(ch.codePointAt(0) ?? 0)) return 'contains NUL or a control character'
  }
  return undefined
}

export const isShareableName = (name: string) => nameProblem(name) === undefined

/**
 * A name from the network to save a file under: `name` itself when it is a file name, else
 * `fallback` (a sha256, always one), so no name a directory sends can lead out of the folder.
 */
export const savedName = (name: string, fallback: string) =>
  nameProblem(name) === undefined ? name : fallback

/** Why `path` (a folder under a shared folder: `/`-separated, `""` at the top) is refused, or undefined. */
export const pathProblem = (path: string): string | undefined => folderPathProblem(path, nameProblem)

/** The folders of a valid path, top first; none for `""`. */
export const segmentsOf = pathSegments

/** `a` and `b` joined as one folder path (either may be `""`). */
export const joinPath = (a: string, b: string) => (a && b ? `${a}/${b}` : a || b)

export type Placement = { file: string } | { refused: string }

/**
 * The file that `folder` and `name` (from the network) name under `root` (ours, absolute), or why not.
 * The joined folder obeys the path rules as a whole, so no nesting makes it deeper or longer.
 */
export function placeUnder(root: string, folder: string, name: string): Placement {
  const nameRefusal = nameProblem(name)
  if (nameRefusal) return { refused: `the name ${nameRefusal}` }
  const pathRefusal = pathProblem(folder)
  if (pathRefusal) return { refused: `the path ${pathRefusal}` }
  const base = resolve(root)
  const file = join(base, ...segmentsOf(folder), name)
  // Belt and braces: what the rules let through stays under root whatever the platform's separators.
  const rel = relative(base, file)
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || resolve(base, rel) !== file)
    return { refused: 'the path leaves the folder' }
  return { file }
}
