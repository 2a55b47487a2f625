import { type ListedFile, listPeerFolder } from './browse.ts'
import { ControlError, DaemonUnreachable, DaemonWentAway } from './control-client.ts'
import type { DaemonConnection } from './daemon-client.ts'
import { CliError, EXIT } from './errors.ts'
import { formatBytes, formatDuration } from './format.ts'
import { lastSegment, type PeerPath, parsePeerPath } from './peer-path.ts'

/**
 * `peer get <username>/<path>`: a file of that user's, or a whole folder tree into `<out>/<folder>/…`,
 * its structure kept. Each file is one `get` of its hash through the daemon (so from every live holder
 * of the content, verified, resumable), saved under the folder and name the listing gives it, which the
 * daemon refuses if they would leave the out folder. A few files at once: an album of a thousand small
 * files is not a queue of round trips. A rerun finds the verified files in place and fetches the rest.
 */

/** Files fetched at once: enough to hide each file's round trips, few enough to leave each its sources. */
export const FOLDER_CONCURRENCY = 4

export type FolderFileOutcome = {
  /** Where it is in the user's share: its folder and name as listed. */
  path: string
  name: string
  sha256: string
  size: number
  outcome: 'verified' | 'failed' | 'refused'
  /** Verified in place from an earlier run: nothing fetched. */
  alreadyThere: boolean
  savedTo: string
  resumedBytes: number
  bytesPerSource: Record<string, number>
  error: string
}

export type FolderGetResult = {
  username: string
  path: string
  kind: 'file' | 'folder'
  files: FolderFileOutcome[]
  verified: number
  failed: number
  bytes: number
  seconds: number
}

type PlannedFile = ListedFile & { folder: string; refused?: string }

/** The files `where` names and the folder each goes to under the out folder; exit 3 if none. */
async function plan(
  daemon: DaemonConnection,
  where: PeerPath,
): Promise<{ kind: 'file' | 'folder'; files: PlannedFile[] }> {
  const notFound = (err: unknown) => err instanceof ControlError && err.code === 'not_found'
  try {
    const listing = await listPeerFolder(daemon.client, where, true)
    const base = listing.path
    const top = lastSegment({ username: where.username, path: base })
    const files = listing.files.map((file): PlannedFile => {
      const inside = file.path === base || base === '' || file.path.startsWith(`${base}/`)
      if (!inside) return { ...file, folder: '', refused: `its path "${file.path}" is not inside ${base}` }
      const rest = file.path === base ? '' : file.path.slice(base ? base.length + 1 : 0)
      return { ...file, folder: rest ? `${top}/${rest}` : top }
    })
    return { kind: 'folder', files: onePerPlace(files) }
  } catch (err) {
    if (!notFound(err) || where.path === '') throw err
  }
  // Not a folder: a file, listed in the folder above it.
  const slash = where.path.lastIndexOf('/')
  const parent = slash < 0 ? '' : where.path.slice(0, slash)
  const name = where.path.slice(slash + 1)
  const level = await listPeerFolder(daemon.client, { username: where.username, path: parent }, false).catch(
    (err: unknown) => {
      if (notFound(err)) return undefined
      throw err
    },
  )
  const file = level?.files.find((f) => f.name === name)
  if (!file)
    throw new CliError(
      `${where.username} shares no file or folder "${where.path}"; see \`peer browse ${where.username}\``,
      EXIT.notFound,
    )
  return { kind: 'file', files: [{ ...file, folder: '' }] }
}

/** A listing that names one place twice (a lying directory) gets the first; the rest are refused. */
function onePerPlace(files: PlannedFile[]): PlannedFile[] {
  const taken = new Set<string>()
  return files.map((file) => {
    const place = `${file.folder}/${file.name}`
    if (file.refused) return file
    if (taken.has(place)) return { ...file, refused: 'the listing names this place twice' }
    taken.add(place)
    return file
  })
}

/** One line redrawn in place: files done of all, bytes, rate, ETA. */
class FolderProgress {
  readonly #stream: NodeJS.WriteStream
  readonly #title: string
  readonly #started = performance.now()
  #drawn = 0

  constructor(stream: NodeJS.WriteStream, title: string) {
    this.#stream = stream
    this.#title = title
  }

  update(filesDone: number, files: number, done: number, resumed: number, total: number, force = false) {
    const now = performance.now()
    if (!force && now - this.#drawn < 100) return
    this.#drawn = now
    const elapsed = (now - this.#started) / 1000
    const rate = elapsed > 0 ? (done - resumed) / elapsed : 0
    const eta = rate > 0 ? (total - done) / rate : Number.POSITIVE_INFINITY
    const fraction = total > 0 ? done / total : 1
    const width = 20
    const filled = Math.round(fraction * width)
    const text =
      `${this.#title.slice(0, 24)} ${filesDone}/${files} files ${'█'.repeat(filled)}${'░'.repeat(width - filled)} ` +
      `${(fraction * 100).toFixed(0).padStart(3)}% ${formatBytes(done)}/${formatBytes(total)} ` +
      `${formatBytes(rate)}/s ETA ${formatDuration(eta)}`
    this.#stream.write(`\r\u001b[2K${text}`)
  }

  end() {
    this.#stream.write('\n')
  }
}

/** Fetches `target` (a peer path) into `outDir` (empty: the daemon's shared folder). */
export async function getPeerPath(
  daemon: DaemonConnection,
  target: string,
  outDir: string,
  progress: NodeJS.WriteStream | undefined,
): Promise<FolderGetResult> {
  const where = parsePeerPath(target)
  const { kind, files } = await plan(daemon, where)
  if (files.length === 0)
    throw new CliError(`${where.username}/${where.path} is empty: nothing to get`, EXIT.notFound)
  const started = performance.now()
  const total = files.reduce((sum, f) => sum + f.size, 0)
  // Per file: bytes verified, and of those, how many were on disk before (not fetched now).
  const doneBytes = new Map<PlannedFile, number>()
  const resumedBytes = new Map<PlannedFile, number>()
  const sum = (bytes: Map<PlannedFile, number>) => [...bytes.values()].reduce((a, b) => a + b, 0)
  let filesDone = 0
  const bar = progress ? new FolderProgress(progress, lastSegment(where)) : undefined
  const redraw = (force = false) =>
    bar?.update(filesDone, files.length, sum(doneBytes), sum(resumedBytes), total, force)

  async function fetchOne(file: PlannedFile): Promise<FolderFileOutcome> {
    const outcome: FolderFileOutcome = {
      path: file.path,
      name: file.name,
      sha256: file.sha256,
      size: file.size,
      outcome: 'failed',
      alreadyThere: false,
      savedTo: '',
      resumedBytes: 0,
      bytesPerSource: {},
      error: '',
    }
    try {
      if (file.refused) return { ...outcome, outcome: 'refused', error: file.refused }
      const request = { target: file.sha256, outDir, folder: file.folder, name: file.name }
      for await (const update of daemon.client.stream('get', request)) {
        doneBytes.set(file, Number(update.doneBytes))
        resumedBytes.set(file, Number(update.resumedBytes))
        if (!update.finished) {
          redraw()
          continue
        }
        const bytesPerSource = Object.fromEntries(update.sources.map((s) => [s.username, Number(s.bytes)]))
        // The daemon answers a verified copy already in place with one finished message and no source.
        const alreadyThere = update.sources.length === 0 && Number(update.seconds) === 0
        return {
          ...outcome,
          outcome: 'verified',
          alreadyThere,
          savedTo: update.path,
          resumedBytes: Number(update.resumedBytes),
          bytesPerSource,
        }
      }
      return { ...outcome, error: 'the daemon ended the download without a result' }
    } catch (err) {
      // Without its daemon no file can be fetched: the whole command fails, as a single get does.
      if (err instanceof DaemonUnreachable || err instanceof DaemonWentAway) throw err
      const message = err instanceof Error ? err.message : String(err)
      const refused =
        err instanceof ControlError && err.code === 'invalid_argument' && message.startsWith('refused')
      return { ...outcome, outcome: refused ? 'refused' : 'failed', error: message }
    } finally {
      filesDone++
      redraw()
    }
  }

  const outcomes: FolderFileOutcome[] = new Array(files.length)
  let next = 0
  const worker = async () => {
    while (next < files.length) {
      const i = next++
      outcomes[i] = await fetchOne(files[i] as PlannedFile)
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(FOLDER_CONCURRENCY, files.length) }, worker))
  } finally {
    if (bar) {
      redraw(true)
      bar.end()
    }
  }
  const verified = outcomes.filter((o) => o.outcome === 'verified')
  return {
    username: where.username,
    path: where.path,
    kind,
    files: outcomes,
    verified: verified.length,
    failed: outcomes.length - verified.length,
    bytes: verified.reduce((sum, o) => sum + o.size, 0),
    seconds: (performance.now() - started) / 1000,
  }
}

/** The human report: one line for the whole, one per file that did not verify. */
export function folderReport(r: FolderGetResult): string {
  const fetched = r.files.filter((f) => f.outcome === 'verified' && !f.alreadyThere)
  const fetchedBytes = fetched.reduce((sum, f) => sum + f.size - f.resumedBytes, 0)
  const rate = r.seconds > 0 && fetchedBytes > 0 ? ` at ${formatBytes(fetchedBytes / r.seconds)}/s` : ''
  const there = r.files.length - fetched.length - r.failed
  const lines = [
    r.kind === 'file' && r.files[0]?.outcome === 'verified'
      ? `${r.files[0].name} (${formatBytes(r.files[0].size)}) verified and saved to ${r.files[0].savedTo}${rate}`
      : `${r.username}/${r.path}: ${r.verified} of ${r.files.length} files verified (${formatBytes(r.bytes)})${rate}${there > 0 ? `, ${there} already in place` : ''}`,
  ]
  for (const f of r.files.filter((f) => f.outcome !== 'verified'))
    lines.push(`${f.outcome}: ${[f.path, f.name].filter(Boolean).join('/')}: ${f.error}`)
  if (r.failed > 0)
    lines.push('run the same `peer get` again to fetch the rest (verified files and chunks are kept)')
  return lines.join('\n')
}
