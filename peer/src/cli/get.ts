import type { IncomingHttpHeaders } from 'node:http'
import { resolve } from 'node:path'
import { CHOICE_HEADER } from '../control-headers.ts'
import { daemonCommand, daemonFor, jsonOption } from './common.ts'
import type { DaemonConnection } from './daemon-client.ts'
import { EXIT } from './errors.ts'
import { formatBytes, ordinal, ProgressBar } from './format.ts'
import { folderReport, getPeerPath } from './get-folder.ts'
import { emit } from './output.ts'
import { isPeerPath } from './peer-path.ts'

export type GetResult = {
  name: string
  sha256: string
  size: number
  path: string
  seconds: number
  resumedBytes: number
  bytesPerSource: Record<string, number>
  /**
   * Every source asked, in the order asked: direct ones first, then those reached through a relay;
   * `queued`: our place in its upload queue when it made us wait to the end (0: it served us or had no turn).
   */
  sources: {
    username: string
    url: string
    bytes: number
    relayed: boolean
    /** How its bytes reached us: its own address, a link punched through both NATs, or its relay. */
    link: string
    queued: number
  }[]
  dropped: { username: string; url: string; reason: string }[]
  /** When several contents carry the name asked for: which was taken and why (else empty). */
  choice: string
}

type SourceUpdate = { username: string; dropped: string; queued: number }

/**
 * The sources that make us wait in their upload queue (`queued at alice: 3rd`), and whether every
 * source left does: then the download waits, it has not failed. Empty when none does.
 */
export function queueLine(sources: SourceUpdate[]): string {
  const live = sources.filter((s) => !s.dropped)
  const queued = live.filter((s) => s.queued > 0)
  if (queued.length === 0) return ''
  const places = queued.map((s) => `queued at ${s.username}: ${ordinal(s.queued)}`).join(', ')
  return queued.length === live.length
    ? `waiting for a turn: every source has us in its upload queue (${places})`
    : places
}

/**
 * Runs one `get` through the daemon, drawing progress when `bar` is given; without one, each change of
 * the sources' upload queues is a line on `notes` (stderr).
 */
export async function runGet(
  daemon: DaemonConnection,
  target: string,
  outDir: string,
  bar: ProgressBar | undefined,
  notes: NodeJS.WritableStream | undefined = process.stderr,
): Promise<GetResult> {
  let last: GetResult | undefined
  let lastQueue = ''
  let choice = ''
  const readChoice = (headers: IncomingHttpHeaders) => {
    const header = headers[CHOICE_HEADER]
    if (typeof header === 'string') choice = decodeURIComponent(header)
  }
  try {
    for await (const update of daemon.client.stream('get', { target, outDir }, readChoice)) {
      const size = Number(update.size)
      if (update.finished) {
        last = {
          name: update.name,
          sha256: update.sha256,
          size,
          path: update.path,
          seconds: Number(update.seconds),
          resumedBytes: Number(update.resumedBytes),
          bytesPerSource: Object.fromEntries(update.sources.map((s) => [s.username, Number(s.bytes)])),
          sources: update.sources.map((s) => ({
            username: s.username,
            url: s.url,
            bytes: Number(s.bytes),
            relayed: s.relayed,
            link: s.link,
            queued: s.queued,
          })),
          dropped: update.sources
            .filter((s) => s.dropped)
            .map((s) => ({ username: s.username, url: s.url, reason: s.dropped })),
          choice,
        }
      } else {
        const queue = queueLine(update.sources)
        if (!bar && queue && queue !== lastQueue) notes?.write(`${update.name}: ${queue}\n`)
        lastQueue = queue
        bar?.update(update.name, Number(update.doneBytes), size, update.activeSources, queue)
      }
    }
  } finally {
    if (bar) bar.end()
  }
  if (!last) throw new Error('the daemon ended the download without a result')
  return last
}

export const getCommand = daemonCommand('get', 'download from every live source at once, verified, resumable')
  .argument(
    '<name-or-sha256>',
    'a content hash, a file name from `peer search`, or a user’s file or folder: alice/<path>',
  )
  .option('--out <folder>', 'where to put it (default: the daemon’s shared folder)')
  .addOption(jsonOption())
  .addHelpText(
    'after',
    '\nExamples:\n  peer get song.mp3\n  peer get "alice/Music/Nightjar Ensemble" --out ~/Music\n  peer get 3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b --out ~/Downloads',
  )
  .action(async (target: string, opts) => {
    const daemon = daemonFor(opts)
    if (isPeerPath(target)) {
      const progress = process.stdout.isTTY && !opts.json ? process.stdout : undefined
      const folder = await getPeerPath(daemon, target, opts.out ? resolve(opts.out) : '', progress)
      emit(opts.json, folder, folderReport)
      if (folder.failed > 0) process.exitCode = EXIT.failed
      return
    }
    const bar = process.stdout.isTTY && !opts.json ? new ProgressBar(process.stdout) : undefined
    const result = await runGet(daemon, target, opts.out ? resolve(opts.out) : '', bar)
    emit(opts.json, result, (r) => {
      const rate = r.seconds > 0 ? ` at ${formatBytes((r.size - r.resumedBytes) / r.seconds)}/s` : ''
      const lines = [`${r.name} (${formatBytes(r.size)}) verified and saved to ${r.path}${rate}`]
      if (r.choice) lines.unshift(r.choice)
      if (r.resumedBytes > 0)
        lines.push(`resumed: ${formatBytes(r.resumedBytes)} were already verified on disk`)
      for (const d of r.dropped) lines.push(`dropped source ${d.username} (${d.url}): ${d.reason}`)
      return lines.join('\n')
    })
  })
