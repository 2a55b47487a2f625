import { CliError, EXIT } from './errors.ts'

/**
 * A peer path, `<username>/<folder>/<name>`: what one user shares (README, "Folders"). Usernames, names and hashes
 * never contain `/`, so any `/` makes a `peer get` target a peer path rather than a name.
 */
export const isPeerPath = (target: string) => target.includes('/')

export type PeerPath = { username: string; path: string }

/** `alice`, `alice/`, `alice/Music/Album`: the user and the folder path (slashes at the end dropped). */
export function parsePeerPath(text: string): PeerPath {
  const slash = text.indexOf('/')
  const username = slash < 0 ? text : text.slice(0, slash)
  const path = slash < 0 ? '' : text.slice(slash + 1).replace(/\/+$/, '')
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(username))
    throw new CliError(
      `"${username}" is not a username: write <username>/<folder>, e.g. alice/Music`,
      EXIT.usage,
    )
  return { username, path }
}

/** The last folder of a path, or for the top of a share the user's name: where a folder get puts it. */
export const lastSegment = ({ username, path }: PeerPath) => path.slice(path.lastIndexOf('/') + 1) || username
