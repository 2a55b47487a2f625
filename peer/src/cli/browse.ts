import { daemonCommand, daemonFor, jsonOption } from './common.ts'
import type { ControlClient } from './control-client.ts'
import { CliError, EXIT } from './errors.ts'
import { formatBytes, table } from './format.ts'
import { emit } from './output.ts'
import { type PeerPath, parsePeerPath } from './peer-path.ts'

export type ListedFile = {
  name: string
  /** The folder it is in, from the top of the user's share. */
  path: string
  size: number
  sha256: string
  chunkSize: number
  manifest: string
}
export type Listing = {
  username: string
  state: string
  path: string
  folders: { name: string; files: number; bytes: number }[]
  files: ListedFile[]
}

/** A bound on what one listing may bring, however many pages a directory keeps offering. */
const MAX_LISTED_FILES = 200_000

/**
 * What `username` shares under `path`, through the daemon: one level, or with `recursive` every file
 * below it; page after page until the directory sends no cursor (or one it sent before).
 */
export async function listPeerFolder(
  client: ControlClient,
  { username, path }: PeerPath,
  recursive: boolean,
): Promise<Listing> {
  const seen = new Set<string>()
  let listing: Listing | undefined
  let cursor = ''
  do {
    const page = await client.call('browse', { username, path, recursive, cursor })
    // Folders come with the first page; later ones carry only more files.
    listing ??= {
      username: page.username,
      state: page.state,
      path: page.path,
      folders: page.folders.map((f) => ({ name: f.name, files: Number(f.files), bytes: Number(f.bytes) })),
      files: [],
    }
    for (const f of page.files) listing.files.push({ ...f, size: Number(f.size) })
    if (listing.files.length > MAX_LISTED_FILES)
      throw new CliError(
        `${username}/${path} lists more than ${MAX_LISTED_FILES} files; browse a folder inside it`,
      )
    seen.add(cursor)
    cursor = page.cursor
  } while (cursor && !seen.has(cursor))
  return listing
}

/** A file's folder below `base` (`""` when it is in base itself), as a listing shows it. */
const below = (base: string, path: string) =>
  path === base ? '' : base && path.startsWith(`${base}/`) ? path.slice(base.length + 1) : path

export const browseCommand = daemonCommand(
  'browse',
  'what a user shares: one level of folders (files, size) and files; --recursive for every file below',
)
  .argument('<username[/folder]>', 'a user, or a folder of theirs: alice, alice/Music/Albums')
  .option('--recursive', 'every file under the folder, with its path')
  .addOption(jsonOption())
  .addHelpText(
    'after',
    '\nExamples:\n  peer browse alice\n  peer browse "alice/Music/Nightjar Ensemble" --recursive --json',
  )
  .action(async (target: string, opts) => {
    const where = parsePeerPath(target)
    const { client } = daemonFor(opts)
    const listing = await listPeerFolder(client, where, Boolean(opts.recursive))
    const title = `${listing.username}/${listing.path} (${listing.state})`
    emit(opts.json, listing, (l) => {
      if (opts.recursive)
        return `${title}: ${l.files.length} files\n${table(
          ['PATH', 'SIZE', 'HASH'],
          l.files.map((f) => [
            [below(l.path, f.path), f.name].filter(Boolean).join('/'),
            formatBytes(f.size),
            f.sha256.slice(0, 12),
          ]),
        )}`
      const rows = [
        ...l.folders.map((f) => [`${f.name}/`, String(f.files), formatBytes(f.bytes), '']),
        ...l.files.map((f) => [f.name, '', formatBytes(f.size), f.sha256.slice(0, 12)]),
      ]
      return `${title}: ${l.folders.length} folders, ${l.files.length} files\n${table(['NAME', 'FILES', 'SIZE', 'HASH'], rows)}`
    })
    if (listing.folders.length === 0 && listing.files.length === 0) {
      if (!opts.json) process.stderr.write(`${where.username} shares nothing under "${where.path}"\n`)
      process.exitCode = EXIT.notFound
    }
  })
